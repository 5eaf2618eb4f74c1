"""Shared fixtures: clean environment, config from dicts, real SQLite and PostgreSQL, peers."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot import db as database
from bot.settings import Config, DeskConfig, Settings
from tests.fakes import FakeSlack, SmtpRecorder, free_port, start_smtp

SECRET_ENV = ("SLACK_", "SMTP_", "DATABASE_URL", "ALERTBOT_", "EMAIL_FROM")
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real token or proxy from the developer's shell reaches a test."""
    for name in list(os.environ):
        if name.startswith(SECRET_ENV) or name in PROXIES:
            monkeypatch.delenv(name)


def story(**fields: Any) -> dict[str, Any]:
    """A valid action-item story (impact 8, two outlets), scored a minute ago; override freely."""
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "id": "story-1",
        "url": "https://desk.example/s/story-1",
        "title": "Launch provider grounded after anomaly",
        "scored_at": (now - timedelta(minutes=1)).isoformat(),
        "impact": 8,
        "sentiment": "negative",
        "topics": ["launch"],
        "sources": [{"outlet": "SpaceNews", "url": "https://spacenews.com/a"},
                    {"outlet": "Reuters", "url": "https://www.reuters.com/b"}],
        "key_takeaways": ["Two missions slip"],
        "key_facts": ["Fact one", "Fact two"],
    }
    base.update(fields)
    if "url" not in fields:
        base["url"] = f"https://desk.example/s/{base['id']}"
    return base


def make_config(tmp_path: Path, database_url: str, desk: dict[str, Any] | None = None,
                **settings: Any) -> Config:
    """Build a Config from dicts, as Starlette's tests do: no process environment involved."""
    values = {"database_url": database_url, "outbox_dir": tmp_path / "outbox",
              "secret_key": "test-secret-key", "config_path": tmp_path / "none.toml", **settings}
    desk_values = {"delivery": {"retry_base": "50ms", "lease": "30s"},
                   "slack": {"pacing": "0s", "batch_window": "30s",
                             "routes": [{"channel": "C0SPACEOPS"}]},
                   **(desk or {})}
    return Config(Settings.model_validate(values), DeskConfig.model_validate(desk_values), None)


# -- databases -------------------------------------------------------------------------------


def _pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(os.path.realpath(pg_ctl)) if pg_ctl else None


class PostgresServer:
    """A real PostgreSQL server of our own on a free port (initdb + pg_ctl), stoppable."""

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not installed; .ci/run must install it")
            pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="alertbot-pg-"))
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.base, "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.base / "data", free_port()
        subprocess.run([*self.run_as, f"{bindir}/initdb", "-D", str(self.data), "-U",
                        "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"], check=True,
                       capture_output=True)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self.run_as, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-o",
                        options, "-w", "-l", str(self.base / "log"), "start"], check=True,
                       capture_output=True)
        return self

    def stop(self) -> None:
        subprocess.run([*self.run_as, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m",
                        "immediate", "stop"], capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server of our own, on a free port, for the whole session."""
    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.remove()


def new_pg_database(server: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def bare_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables yet: SQLite, then a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alertbot.db'}"
    return new_pg_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def database_url(bare_database_url: str) -> str:
    """An upgraded, empty database: SQLite, then a real PostgreSQL."""
    database.upgrade(bare_database_url)
    return bare_database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'alertbot.db'}"
    database.upgrade(url)
    return url


# -- network peers ---------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    controller = start_smtp(recorder)
    yield recorder, int(controller.port)
    controller.stop()
