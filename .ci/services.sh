#!/usr/bin/env bash
# Run a command against throwaway backing services on loopback:
#   PostgreSQL (port 25432, trust auth, database "brandforge"),
#   Redis      (port 26379, no persistence),
#   moto_server S3 (port 25055, from the project's .venv; the bucket is created by the project).
#
# usage: bash .ci/services.sh <command...>
#
# Everything lives in one mktemp dir under /tmp and is removed on exit. Every server is stopped
# by its PID on exit (also when the command or a start-up step fails); the command's exit status
# is preserved. Meant for CI (root, no systemd, no stdin); also works as a non-root user when
# postgresql and redis-server are already installed.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: bash .ci/services.sh <command...>" >&2
  exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOTO_SERVER=${MOTO_SERVER:-$ROOT/.venv/bin/moto_server}

# Below the ephemeral range (32768+), so busy outgoing traffic cannot hold them; overridable.
PG_PORT=${BF_PG_PORT:-25432}
REDIS_PORT=${BF_REDIS_PORT:-26379}
MOTO_PORT=${BF_MOTO_PORT:-25055}
DB_NAME=brandforge

log() { printf '[services] %s\n' "$*" >&2; }

# Microseconds since the epoch, and a "1.23"-style seconds formatter (no bc/awk needed).
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }
fmt_s() { printf '%d.%02d' "$(($1 / 1000000))" "$(($1 % 1000000 / 10000))"; }

# --- packages -------------------------------------------------------------------------------
pg_bindir() {  # newest /usr/lib/postgresql/<version>/bin that has initdb
  local d
  while read -r d; do
    if [ -x "$d/initdb" ]; then
      echo "$d"
      return 0
    fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  return 1
}

if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null \
  || ! command -v redis-cli >/dev/null || ! pg_bindir >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    log "postgresql/redis-server are missing and I am not root: install them first"
    exit 1
  fi
  log "installing postgresql redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  t=$(now_us)
  apt-get update -qq </dev/null
  apt-get install -y -qq postgresql redis-server </dev/null >/dev/null
  log "apt-get took $(fmt_s $(($(now_us) - t))) s"
fi
PGBIN=$(pg_bindir)

if [ ! -x "$MOTO_SERVER" ]; then
  log "$MOTO_SERVER not found: run 'make venv' first"
  exit 1
fi

# Run a PostgreSQL binary as user postgres when root (initdb refuses to run as root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# --- cleanup (installed before anything starts) ---------------------------------------------
TMP=""
PG_STARTED=0
REDIS_PID=""
MOTO_PID=""

# shellcheck disable=SC2317  # only reached from the EXIT trap
alive() {  # alive PID: exists and is not a zombie (daemons are reparented to PID 1, which may reap late)
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# shellcheck disable=SC2317  # only reached from the EXIT trap
stop_pid() {  # stop_pid NAME PID: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 pid=$2 i
  [ -n "$pid" ] || return 0
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  log "$name (pid $pid) did not stop on SIGTERM within 10 s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap handler
cleanup() {
  local rc=$? t
  set +e
  trap - EXIT INT TERM HUP
  t=$(now_us)
  if [ -n "$MOTO_PID" ]; then
    stop_pid moto_server "$MOTO_PID"
    wait "$MOTO_PID" 2>/dev/null
  fi
  if [ -z "$REDIS_PID" ] && [ -n "$TMP" ] && [ -s "$TMP/redis.pid" ]; then
    REDIS_PID=$(cat "$TMP/redis.pid")
  fi
  stop_pid redis-server "$REDIS_PID"
  if [ "$PG_STARTED" = 1 ]; then
    as_pg "$PGBIN/pg_ctl" -D "$TMP/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || log "pg_ctl stop failed"
  fi
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    rm -rf -- "$TMP"
  fi
  log "services stopped in $(fmt_s $(($(now_us) - t))) s (command exit status $rc)"
  exit "$rc"
}
# shellcheck disable=SC2317  # signal trap handler
on_signal() {  # on_signal STATUS: pass SIGTERM on to the command, then exit (runs cleanup)
  local i
  if [ -n "$CMD_PID" ] && kill -0 "$CMD_PID" 2>/dev/null; then
    log "signal received: stopping the command (pid $CMD_PID)"
    kill -TERM "$CMD_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$CMD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$CMD_PID" 2>/dev/null
  fi
  exit "$1"
}
CMD_PID=""
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

die_with_log() {  # die_with_log MESSAGE LOGFILE
  log "$1"
  if [ -f "$2" ]; then
    log "---- $2 ----"
    tail -n 40 "$2" >&2
  fi
  exit 1
}

T_START=$(now_us)
TMP=$(mktemp -d /tmp/bf-ci.XXXXXX)
chmod 755 "$TMP"   # traversable by postgres; the data dir below is postgres-only
mkdir "$TMP/pg"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$TMP/pg"; fi

# --- PostgreSQL -----------------------------------------------------------------------------
t=$(now_us)
as_pg "$PGBIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
  >"$TMP/pg/initdb.log" 2>&1 || die_with_log "initdb failed" "$TMP/pg/initdb.log"
PG_STARTED=1
as_pg "$PGBIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/server.log" -w -t 30 start \
  -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off" >/dev/null \
  || die_with_log "PostgreSQL did not start (port $PG_PORT in use?)" "$TMP/pg/server.log"
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$DB_NAME"
log "postgresql $("$PGBIN/postgres" -V | awk '{print $3}') up on 127.0.0.1:$PG_PORT in $(fmt_s $(($(now_us) - t))) s"

# --- Redis ----------------------------------------------------------------------------------
t=$(now_us)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log" --dir "$TMP" </dev/null
ok=0
for ((i = 0; i < 100; i++)); do
  if [ -z "$REDIS_PID" ] && [ -s "$TMP/redis.pid" ]; then REDIS_PID=$(cat "$TMP/redis.pid"); fi
  if [ -n "$REDIS_PID" ] && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    ok=1
    break
  fi
  sleep 0.1
done
[ "$ok" = 1 ] || die_with_log "redis-server did not answer on port $REDIS_PORT" "$TMP/redis.log"
log "redis up on 127.0.0.1:$REDIS_PORT in $(fmt_s $(($(now_us) - t))) s"

# --- moto S3 --------------------------------------------------------------------------------
t=$(now_us)
"$MOTO_SERVER" -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$TMP/moto.log" 2>&1 &
MOTO_PID=$!
MOTO_URL="http://127.0.0.1:$MOTO_PORT/moto-api/"
probe_moto() {
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null --max-time 1 "$MOTO_URL" 2>/dev/null
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$MOTO_URL" 2>/dev/null
  fi
}
ok=0
for ((i = 0; i < 150; i++)); do  # ~15 s
  kill -0 "$MOTO_PID" 2>/dev/null || die_with_log "moto_server exited (port $MOTO_PORT in use?)" "$TMP/moto.log"
  if probe_moto; then
    ok=1
    break
  fi
  sleep 0.1
done
[ "$ok" = 1 ] || die_with_log "moto_server did not answer $MOTO_URL within 15 s" "$TMP/moto.log"
log "moto_server up on 127.0.0.1:$MOTO_PORT in $(fmt_s $(($(now_us) - t))) s"
log "all services up in $(fmt_s $(($(now_us) - T_START))) s"

# --- the command ----------------------------------------------------------------------------
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$DB_NAME"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export AWS_STORAGE_BUCKET_NAME=brandforge-ci
export AWS_S3_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_S3_REGION_NAME=us-east-1
export BRANDFORGE_REQUIRE_SERVICES=1
# Keep ambient credentials/profiles from leaking into the fake S3 client.
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE PGPASSWORD

# The command runs as a background job that we wait for, so that a signal sent to this script
# alone is handled at once (passed on to the command, then cleanup) instead of after the command
# ends. "<&0" keeps our stdin for it (bash would otherwise give a background job /dev/null).
set +e
"$@" <&0 &
CMD_PID=$!
wait "$CMD_PID"
rc=$?
CMD_PID=""
set -e
exit "$rc"
