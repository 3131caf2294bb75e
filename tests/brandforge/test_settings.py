"""Tests the embedded default and production settings, in fresh processes as deployments do."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "BRANDFORGE_REQUIRE_SERVICES",
)

# Reads, then writes, in one transaction: the pattern that fails with "database is locked" when
# two processes both hold a read lock and try to upgrade it (SQLite's DEFERRED default).
WRITER = """
import django, os, sys, time
django.setup()
from django.db import connection, transaction
with connection.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER)")
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # all writers begin together
for i in range(int(sys.argv[1])):
    with transaction.atomic(), connection.cursor() as c:
        c.execute("SELECT COUNT(*) FROM counter")
        c.execute("INSERT INTO counter VALUES (%s)", [c.fetchone()[0]])
with connection.cursor() as c:
    c.execute("PRAGMA journal_mode")
    print(c.fetchone()[0], connection.transaction_mode)
"""


def embedded_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    return env | {
        "DJANGO_SETTINGS_MODULE": "brandforge.settings",
        "BRANDFORGE_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "BRANDFORGE_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def test_sqlite_runs_in_wal_mode_and_concurrent_writers_do_not_lock_each_other(tmp_path):
    import time

    env = embedded_env(tmp_path)
    start = str(time.time() + 3)
    writers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", WRITER, "400", start],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert out.split() == ["wal", "IMMEDIATE"]
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 1200


def test_the_embedded_default_shares_one_secret_key_between_processes(tmp_path):
    env = embedded_env(tmp_path)
    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)"
    )
    keys = {
        subprocess.run(  # noqa: S603
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 1 and len(keys.pop()) >= 50
    assert oct((tmp_path / "var" / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    env = embedded_env(
        tmp_path,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="brandforge.example.com",
        BRANDFORGE_HTTPS="1",
        DJANGO_DEBUG="0",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_boolean_variable_is_a_clear_error(tmp_path):
    env = embedded_env(tmp_path, DJANGO_DEBUG="maybe")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize("value", ["1", "true", "yes", "on"])
def test_truthy_values(value, monkeypatch):
    from brandforge.env import env_bool

    monkeypatch.setenv("X_FLAG", value)
    assert env_bool("X_FLAG") is True
