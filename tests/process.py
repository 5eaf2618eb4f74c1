"""Run the real `alertbot` command in a child process, configured only by its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes import free_port

INGEST_TOKEN = "ingest-token-for-tests"


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Alertbot:
    """An environment for `alertbot` commands and a handle on `alertbot run`."""

    tmp: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    @classmethod
    def make(cls, tmp: Path, toml: str, slack_url: str | None = None, **extra: str) -> Alertbot:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("SLACK_", "SMTP_", "ALERTBOT_", "DATABASE_URL"))}
        env.update({
            "DATABASE_URL": f"sqlite:///{tmp / 'alertbot.db'}",
            "ALERTBOT_CONFIG": str(write_toml(tmp / "alertbot.toml", toml)),
            "ALERTBOT_OUTBOX_DIR": str(tmp / "outbox"),
            "ALERTBOT_SECRET_KEY": "process-test-key",
            "ALERTBOT_INGEST_TOKEN": INGEST_TOKEN,
            **extra,
        })
        if slack_url:
            env.update(SLACK_BOT_TOKEN="xoxb-process-test", SLACK_API_URL=slack_url)
        bot = cls(tmp, env)
        bot.env["ALERTBOT_HTTP_PORT"] = str(bot.port)
        return bot

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], env=self.env, cwd=self.tmp,
                              input=stdin.decode() if stdin else None, capture_output=True,
                              text=True, timeout=120)

    def start(self) -> Alertbot:
        log = (self.tmp / "run.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=self.env,
                                        cwd=self.tmp, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for the port to answer, not a fixed sleep
            if self.process.poll() is not None:
                raise AssertionError(f"alertbot run exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"alertbot run did not answer /healthz:\n{self.log()}")

    def log(self) -> str:
        path = self.tmp / "run.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def push(self, body: Any, token: str | None = INGEST_TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if isinstance(body, bytes):
            return httpx.post(f"{self.url}/api/stories", content=body, headers=headers,
                              timeout=30, **kwargs)
        return httpx.post(f"{self.url}/api/stories", json=body, headers=headers, timeout=30)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None


def pg_statuses(url: str) -> dict[str, int]:
    """How many outbox rows a PostgreSQL database holds in each status."""
    import psycopg

    with psycopg.connect(url) as db:
        return dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
                    .fetchall())


def until(condition: Callable[[], object], seconds: float) -> None:
    """Poll `condition` for state no event announces (a database's rows, a server's health)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
