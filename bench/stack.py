"""Provides a local multi-process stack for benchmarks and reliability tests.

``LocalStack`` runs what a deployment runs, on loopback: the fake provider (in this process, so
the caller can read its counters), a web server and a ``qcluster`` as subprocesses, all pointed at
one database and broker::

    with LocalStack(database_url=url, workers=2, fake_config={"latency": 2.0}) as stack:
        campaign_launch(campaign=campaign)      # from this process: same broker, same key
        ...
        stack.kill_worker(stack.worker_pids()[0])
    stack.cpu_report                            # CPU seconds of the web and cluster trees

Choices, and why:

- **Web server**: ``manage.py runserver 127.0.0.1:<port> --noreload`` (a thread per request)
  by default, because gunicorn is only in the ``prod`` extra and the test environment must not
  need it. ``web="gunicorn"`` runs ``gunicorn brandforge.wsgi -w 1 --threads 4`` where gunicorn
  is importable. runserver opens a new database connection per request (its threads are not
  reused), which gunicorn's fixed threads avoid; benchmarks say which one they used.
- **Cluster**: ``instrument=True`` (default) runs ``python -m bench.stack qcluster``: this module
  connects three django-q2 signal receivers in the cluster's main process, then runs the
  ``qcluster`` management command exactly as ``manage.py qcluster`` does (the workers are forked
  from it, receivers included). The receivers (1) name each worker process through
  ``prctl(PR_SET_NAME)`` — ``/proc/<pid>/comm`` reads ``qw:idle`` or ``qw:<task>:<first arg>``
  (``qw:run:17``, ``qw:done:17``, ``qw:rev:17``) — because django-q2 only sets process titles
  when the optional ``setproctitle`` package is installed, and it is not a dependency; and
  (2) stamp ``task["started"]`` when the worker starts executing: django-q2 1.11 stamps it in
  ``async_task`` at *enqueue* time (django_q/tasks.py), so without this a Success row's
  ``stopped - started`` is queue wait plus run time. ``instrument=False`` runs the plain
  ``manage.py qcluster``.
- **Which processes are workers**: the cluster is ``qcluster`` (main) → sentinel → workers,
  monitor, pusher; the sentinel forks the workers first, then the monitor, then the pusher, and
  forks a new worker whenever one dies (django_q/cluster.py, ``spawn_cluster``/``reincarnate``).
  Children are read from ``/proc/<pid>/task/*/children``. Instrumented: a worker is a child of
  the sentinel whose ``comm`` starts with ``qw:``. Plain: once the sentinel has ``workers + 2``
  children, the two forked last (by start time, then pid) are the monitor and the pusher; every
  other live child of the sentinel, then and later, is a worker.
- **CPU**: ``cpu_seconds()`` sums ``utime + stime + cutime + cstime`` from ``/proc/<pid>/stat``
  over each live process tree (a child that exited and was reaped is in its parent's ``cutime``),
  plus what stopped trees used: the larger of the last sample and ``os.wait4``'s rusage (a
  graceful stop reaps the whole tree; a SIGKILLed tree orphans its children, so the sample is
  then the better figure).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
WORKER_PREFIX = "qw:"
# Short labels for /proc/<pid>/comm (15 bytes at most).
TASK_TAGS = {
    "job_run": "run",
    "job_complete": "done",
    "job_poll": "poll",
    "job_review_prepare": "rev",
    "campaign_jobs_create": "jobs",
    "jobs_reconcile": "recon",
    "naive_generate": "naive",
}


# --- /proc helpers ----------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def proc_stat(pid: int) -> dict[str, Any] | None:
    """The fields of ``/proc/<pid>/stat`` we use, or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return {
        "state": fields[0],
        "ppid": int(fields[1]),
        "utime": int(fields[11]),
        "stime": int(fields[12]),
        "cutime": int(fields[13]),
        "cstime": int(fields[14]),
        "starttime": int(fields[19]),
    }


def alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat["state"] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list: a child may be forked by any thread)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for entry in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found.extend(int(p) for p in (entry / "children").read_text().split())
    return sorted(set(found))


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if proc_stat(current) is None:
            continue
        tree.append(current)
        todo.extend(children(current))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every descendant, alive or exited and reaped."""
    ticks = 0
    for member in process_tree(pid):
        stat = proc_stat(member)
        if stat is not None:
            ticks += stat["utime"] + stat["stime"] + stat["cutime"] + stat["cstime"]
    return ticks / CLK_TCK


def _start_tick(pid: int) -> int:
    return (proc_stat(pid) or {}).get("starttime", 0)


def _wait_stopped(pid: int, timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while (proc_stat(pid) or {"state": "T"})["state"] not in ("T", "t", "Z", "X"):
        if time.monotonic() > deadline:
            return
        time.sleep(0.0005)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def service_pids(port: int) -> list[int]:
    """Root processes of a local server started on ``port``: ``-p PORT``/``--port PORT`` on its
    command line, or a process title ending in ``:PORT`` (PostgreSQL, moto and Redis as
    .ci/services.sh starts them)."""
    wanted = str(port).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        flagged = any(
            flag in (b"-p", b"--port") and value == wanted
            for flag, value in itertools.pairwise(args)
        )
        titled = args[0].split(b" ")[-1].endswith(b":" + wanted)
        if flagged or titled:
            found.append(int(entry.name))
    # Keep the roots only (a postmaster's backends carry its command line too, on some systems).
    return [pid for pid in found if (proc_stat(pid) or {}).get("ppid") not in found]


# --- the stack --------------------------------------------------------------------------------


class StackError(RuntimeError):
    """A process of the stack did not start, or died; the message ends with its log."""


class _Proc:
    """One subprocess of the stack (own process group), its log and its CPU accounting."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path):
        self.name = name
        self.log = log
        self._log_fh = log.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 (our own interpreter and module, no shell)
            args,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.last_cpu = 0.0
        self.final_cpu: float | None = None

    def exited(self) -> bool:
        """Whether the main process has exited; it is not reaped, so its pid (and process group
        id) stays reserved until ``stop`` reaps it."""
        if self.final_cpu is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def running(self) -> bool:
        return not self.exited()

    def cpu(self) -> float:
        if self.final_cpu is not None:
            return self.final_cpu
        self.last_cpu = max(self.last_cpu, tree_cpu_seconds(self.pid))
        return self.last_cpu

    def stop(self, *, grace: float, hard: bool = False) -> float:
        """SIGTERM the main process (its own shutdown stops its children), SIGKILL the group
        after ``grace`` s (at once when ``hard``); return the tree's CPU seconds."""
        if self.final_cpu is not None:
            return self.final_cpu
        self.cpu()
        with contextlib.suppress(ProcessLookupError):
            if hard:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGTERM)
        if not self._wait_exit(grace):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self._wait_exit(10.0)
        # The main process is a zombie until reaped, so its process group id cannot have been
        # reused: whatever is left in the group is ours (orphans of a killed tree).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        used = 0.0
        try:
            _, status, rusage = os.wait4(self.pid, 0)
            self.popen.returncode = os.waitstatus_to_exitcode(status)
            # A graceful stop reaps every descendant, so wait4 covers the whole tree; a killed
            # tree orphans its children, whose time only the last sample holds.
            used = rusage.ru_utime + rusage.ru_stime
        except ChildProcessError:
            pass
        self.final_cpu = max(self.last_cpu, used)
        self._log_fh.close()
        return self.final_cpu

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.exited():
            with contextlib.suppress(Exception):
                self.cpu()  # keep sampling while it drains
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _configured_secret_key() -> str | None:
    """This process's Django SECRET_KEY when Django is configured: tasks this process enqueues
    are signed with it, so the cluster must share it."""
    try:
        from django.conf import settings

        if settings.configured:
            return settings.SECRET_KEY
    except Exception:  # noqa: BLE001 - Django missing or not configurable: make a key instead
        return None
    return None


class LocalStack:
    """The fake provider, a web server and a qcluster on loopback, sharing one database.

    ``fake_config`` is passed to ``FakeProvider(**fake_config)``. ``extra_env`` is added to
    (and overrides) the environment of every subprocess; without a ``DJANGO_SECRET_KEY`` there
    or in the environment, this process's Django SECRET_KEY (or a fresh random key) is given to
    all of them. Use as a context manager; ``stop()`` fills ``cpu_report``.
    """

    def __init__(
        self,
        *,
        database_url: str,
        workers: int = 2,
        fake_config: Mapping[str, Any],
        extra_env: Mapping[str, str] | None = None,
        web: str = "runserver",
        instrument: bool = True,
        log_dir: str | Path | None = None,
        ready_timeout: float = 60.0,
        stop_grace: float = 30.0,
    ) -> None:
        if web not in ("runserver", "gunicorn"):
            raise ValueError("web is 'runserver' or 'gunicorn'")
        self.database_url = database_url
        self.workers = workers
        self.fake_config = dict(fake_config)
        self.extra_env = dict(extra_env or {})
        self.web_kind = web
        self.instrument = instrument
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="bf-stack-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.fake = None
        self.web: _Proc | None = None
        self.cluster: _Proc | None = None
        self.retired: list[_Proc] = []
        self.web_port = 0
        self.env: dict[str, str] = {}
        self.kills: list[dict[str, Any]] = []
        self.cpu_report: dict[str, float] = {}
        self._aux: set[int] = set()
        self._cluster_count = 0

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> LocalStack:
        from generation.fakeprovider import FakeProvider

        try:
            self.fake = FakeProvider(**self.fake_config)
            self.fake.start()
            self.web_port = free_port()
            self.env = self._environment()
            self._start_web()
            self._start_cluster()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, float]:
        """Stop the cluster (SIGTERM: it drains), then the web server, then the fake; SIGKILL
        whatever outlives the grace period. Returns and keeps the CPU report."""
        if self.cluster is not None:
            self.cluster.stop(grace=self.stop_grace)
            self.retired.append(self.cluster)
            self.cluster = None
        if self.web is not None:
            self.web.stop(grace=5.0)
            self.retired.append(self.web)
            self.web = None
        if self.fake is not None:
            self.fake.stop()
        self.cpu_report = self.cpu_seconds()
        if self._own_log_dir and os.environ.get("BRANDFORGE_KEEP_STACK_LOGS") != "1":
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.cpu_report

    def _environment(self) -> dict[str, str]:
        assert self.fake is not None
        host_port = self.fake.base_url.removeprefix("http://")
        secret = (
            self.extra_env.get("DJANGO_SECRET_KEY")
            or os.environ.get("DJANGO_SECRET_KEY")
            or _configured_secret_key()
        )
        if not secret:
            import secrets

            secret = secrets.token_urlsafe(48)
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "brandforge.settings",
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": self.database_url,
                "FAL_KEY": "fake",
                "FAL_QUEUE_URL": self.fake.fal_url,
                "FAL_JWKS_URL": self.fake.jwks_url,
                "FAL_USER_ID": self.fake.fal_user_id,
                "BRANDFORGE_PUBLIC_URL": self.public_url,
                "BRANDFORGE_NET_ALLOW": host_port,
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "BRANDFORGE_MASTER_SIZE": "64",
                "BRANDFORGE_WORKERS": str(self.workers),
                "DJANGO_SECRET_KEY": secret,
            }
        )
        env.update({key: str(value) for key, value in self.extra_env.items()})
        env["DJANGO_SECRET_KEY"] = secret
        return env

    def _start_web(self) -> None:
        if self.web_kind == "gunicorn":
            import importlib.util

            if importlib.util.find_spec("gunicorn") is None:
                raise StackError("web='gunicorn', but gunicorn is not installed (.[prod])")
            args = [
                sys.executable,
                "-m",
                "gunicorn",
                "brandforge.wsgi",
                "-w",
                "1",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{self.web_port}",
            ]
        else:
            args = [
                sys.executable,
                str(MANAGE),
                "runserver",
                f"127.0.0.1:{self.web_port}",
                "--noreload",
            ]
        self.web = _Proc("web", args, self.env, self.log_dir / "web.log")
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        import httpx

        assert self.web is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if not self.web.running():
                raise StackError(f"the web server exited at start:\n{self.web.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.public_url}/healthz", timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(
                    f"/healthz did not answer in {self.ready_timeout}s:\n{self.web.tail()}"
                )
            time.sleep(0.1)

    def _start_cluster(self) -> None:
        self._cluster_count += 1
        if self.instrument:
            args = [sys.executable, "-m", "bench.stack", "qcluster"]
        else:
            args = [sys.executable, str(MANAGE), "qcluster"]
        log = self.log_dir / f"cluster-{self._cluster_count}.log"
        self.cluster = _Proc("cluster", args, self.env, log)
        self._aux = set()
        deadline = time.monotonic() + self.ready_timeout
        while not self._cluster_ready():
            if not self.cluster.running():
                raise StackError(f"qcluster exited at start:\n{self.cluster.tail()}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"qcluster did not start {self.workers} workers in "
                    f"{self.ready_timeout}s:\n{self.cluster.tail()}"
                )
            time.sleep(0.1)

    def _cluster_ready(self) -> bool:
        sentinel = self.sentinel_pid()
        if sentinel is None:
            return False
        kids = [pid for pid in children(sentinel) if alive(pid)]
        if len(kids) < self.workers + 2:
            return False
        if not self.instrument:
            ordered = sorted(kids, key=lambda pid: (_start_tick(pid), pid))
            self._aux = set(ordered[-2:])
        return len(self.worker_pids()) >= self.workers

    # -- processes -----------------------------------------------------------------------

    def sentinel_pid(self) -> int | None:
        """The cluster's sentinel: the one child of the ``qcluster`` main process."""
        if self.cluster is None or not self.cluster.running():
            return None
        kids = [pid for pid in children(self.cluster.pid) if alive(pid)]
        return kids[0] if len(kids) == 1 else None

    def worker_pids(self) -> list[int]:
        """PIDs of the cluster's worker processes (see the module docstring for the method)."""
        sentinel = self.sentinel_pid()
        if sentinel is None:
            return []
        kids = [pid for pid in children(sentinel) if alive(pid)]
        if self.instrument:
            return [pid for pid in kids if comm(pid).startswith(WORKER_PREFIX)]
        if not self._aux or not self._aux <= set(kids):
            raise StackError(
                "the monitor or pusher was replaced: worker roles are unknown without "
                "instrument=True"
            )
        return [pid for pid in kids if pid not in self._aux]

    def worker_tasks(self) -> dict[int, str]:
        """``{pid: label}`` of each worker: ``idle`` or ``<task>:<first arg>`` (instrumented;
        plain clusters report ``?``)."""
        pids = self.worker_pids()
        if not self.instrument:
            return dict.fromkeys(pids, "?")
        return {pid: comm(pid).removeprefix(WORKER_PREFIX) for pid in pids}

    def kill_worker(self, pid: int, *, only_if: Callable[[str], bool] | None = None) -> str | None:
        """SIGKILL one worker; return what it was doing (``worker_tasks`` label).

        With ``only_if``, the worker is first stopped (SIGSTOP), its label is read again and
        the kill happens only if ``only_if(label)`` holds; otherwise it continues (SIGCONT) and
        None is returned. That pins the kill to the task the label names.
        """
        if pid not in self.worker_pids():
            raise StackError(f"{pid} is not a worker of this cluster")
        if only_if is not None:
            os.kill(pid, signal.SIGSTOP)
            _wait_stopped(pid)  # the label read next is then the one it is stopped with
            label = comm(pid).removeprefix(WORKER_PREFIX)
            if not only_if(label):
                os.kill(pid, signal.SIGCONT)
                return None
        else:
            label = comm(pid).removeprefix(WORKER_PREFIX) if self.instrument else "?"
        os.kill(pid, signal.SIGKILL)
        self.kills.append({"t": time.time(), "pid": pid, "task": label})
        return label

    def restart_cluster(self, *, hard: bool = False) -> None:
        """Stop the cluster (SIGTERM and drain; ``hard``: SIGKILL the whole process group, as
        a crashed node) and start a fresh one."""
        if self.cluster is not None:
            self.cluster.stop(grace=self.stop_grace, hard=hard)
            self.retired.append(self.cluster)
            self.cluster = None
        self._start_cluster()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far: ``web``, ``cluster`` (every cluster this stack ran) and
        ``total``."""
        totals = {"web": 0.0, "cluster": 0.0}
        for proc in [*self.retired, self.web, self.cluster]:
            if proc is not None:
                totals[proc.name] += proc.cpu()
        totals["total"] = totals["web"] + totals["cluster"]
        return totals

    def cluster_cpu_by_role(self) -> dict[str, float]:
        """CPU seconds of the running cluster's processes by role: ``main``, ``sentinel`` (its
        own time), ``exited workers`` (recycled or killed, reaped by the sentinel),
        ``workers`` (live), ``monitor`` and ``pusher`` (the sentinel's other children, forked in
        that order)."""
        roles = dict.fromkeys(
            ("main", "sentinel", "exited workers", "workers", "monitor", "pusher"), 0.0
        )
        sentinel = self.sentinel_pid()
        if self.cluster is None or sentinel is None:
            return roles

        def own(pid: int) -> float:
            stat = proc_stat(pid) or {"utime": 0, "stime": 0}
            return (stat["utime"] + stat["stime"]) / CLK_TCK

        roles["main"] = own(self.cluster.pid)
        roles["sentinel"] = own(sentinel)
        stat = proc_stat(sentinel) or {"cutime": 0, "cstime": 0}
        roles["exited workers"] = (stat["cutime"] + stat["cstime"]) / CLK_TCK
        workers = set(self.worker_pids())
        others = sorted(
            (pid for pid in children(sentinel) if alive(pid) and pid not in workers),
            key=lambda pid: (_start_tick(pid), pid),
        )
        roles["workers"] = sum(tree_cpu_seconds(pid) for pid in workers)
        for role, pid in zip(("monitor", "pusher"), others, strict=False):
            roles[role] = tree_cpu_seconds(pid)
        return roles

    def describe(self) -> dict[str, Any]:
        """The cluster's processes as /proc shows them, for failure messages."""
        if self.cluster is None:
            return {"cluster": None}
        info: dict[str, Any] = {"cluster": self.cluster.pid, "running": self.cluster.running()}
        tree = []
        for pid in process_tree(self.cluster.pid):
            stat = proc_stat(pid) or {}
            tree.append((pid, stat.get("ppid"), stat.get("state"), comm(pid)))
        info["tree"] = tree
        return info

    def log_tail(self, lines: int = 40) -> str:
        """The end of every log of the stack, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"---- {path.name} ----\n" + "\n".join(text))
        return "\n".join(parts)


# --- the instrumented cluster (python -m bench.stack qcluster) ----------------------------------


def _set_comm(name: str) -> None:
    """Name the calling process in /proc/<pid>/comm (Linux prctl PR_SET_NAME; else no-op)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)


def _task_label(func: Any, task: Mapping[str, Any]) -> str:
    name = func if isinstance(func, str) else getattr(func, "__name__", "task")
    name = str(name).rsplit(".", 1)[-1]
    tag = TASK_TAGS.get(name, name[:5])
    args = task.get("args") or ()
    first = args[0] if args and isinstance(args[0], int) else ""
    return f"{WORKER_PREFIX}{tag}:{first}"


def _on_worker_spawn(sender, proc_name=None, **kwargs) -> None:
    _set_comm(f"{WORKER_PREFIX}idle")


def _on_pre_execute(sender, func=None, task=None, **kwargs) -> None:
    from django.utils import timezone

    if task is not None:
        task["started"] = timezone.now()  # execution start, not enqueue time
        _set_comm(_task_label(task.get("func", func), task))


def _on_post_execute(sender, **kwargs) -> None:
    # Runs inside the worker's timer lock: keep it to one syscall.
    _set_comm(f"{WORKER_PREFIX}idle")


def instrumented_qcluster(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandforge.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line
    from django_q.signals import post_execute_in_worker, post_spawn, pre_execute

    post_spawn.connect(_on_worker_spawn, weak=False)
    pre_execute.connect(_on_pre_execute, weak=False)
    post_execute_in_worker.connect(_on_post_execute, weak=False)
    execute_from_command_line([str(MANAGE), *argv])


if __name__ == "__main__":
    if sys.argv[1:2] != ["qcluster"]:
        sys.exit("usage: python -m bench.stack qcluster")
    instrumented_qcluster(sys.argv[1:])
