"""Daily digests at scale (issue 4): 100,000 daily subscribers, 20 action items in the window.

`alertbot digest send` runs as its own process against SQLite, plans every due digest and
delivers them over SMTP to a sink (aiosmtpd, in another process, counting what it accepts).
Prints emails/s (planning included) and the peak RSS of the `alertbot` process.
Usage: python bench/digest.py [SUBSCRIBERS]
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe
from bot import db as database
from bot.db import Database
from bot.db.schema import SUBSCRIBERS
from bot.pipeline import Pipeline
from bot.stories.parsing import parse_batch
from tests.conftest import make_config, story
from tests.fakes import free_port
from tests.process import Alertbot

PROFILE: list[str] = []  # --profile: run alertbot under cProfile into /tmp/digest.prof
TOPICS = ["launch", "satellites", "procurement", "cyber", "missile-defense"]
# What a desk with 100,000 readers would set: two SMTP sessions (one waits on the relay's reply
# to each message), sixteen deliveries in flight.
TOML = "[email]\nconnections = 2\n\n[delivery]\nworkers = 16\n"
ZONES = ["Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Auckland", "UTC"]


def sink(port: int, count: Synchronized[int], ready: Any) -> None:
    """An SMTP server that accepts and counts every message (its own process and core)."""
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def serve(target: Any, port: int) -> tuple[multiprocessing.Process, Synchronized[int]]:
    """Start a counting sink (`target(port, count, ready)`) in its own process; wait for it."""
    count: Synchronized[int] = multiprocessing.Value("i", 0)
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=target, args=(port, count, ready), daemon=True)
    process.start()
    ready.wait(10)
    return process, count


def seed(url: str, tmp: Path, subscribers: int, now: datetime,
         due: datetime | None = None) -> None:
    """Action items first (so they arrived before the window ends), then the subscribers,
    whose digests are due at `due` (by default a minute ago)."""
    config = make_config(tmp, url)

    async def ingest() -> None:
        db = Database(url)
        at = now - timedelta(hours=2)
        items = [story(id=f"item-{n}", title=f"Action item {n}: constellation operator "
                       f"loses contact with {n + 2} satellites", impact=8 + n % 3,
                       topics=[TOPICS[n % len(TOPICS)]], scored_at=at.isoformat(),
                       key_facts=[f"Fact {k} about item {n}" for k in range(4)])
                 for n in range(20)]
        await Pipeline(db, config).ingest(parse_batch(json.dumps(items)), "bench", at)
        db.close()

    asyncio.run(ingest())
    engine = database.create(url)
    due = due or now - timedelta(minutes=1)
    rows = [{"email": f"reader{n}@desk.example", "mode": "both" if n % 10 == 0 else "daily",
             "timezone": ZONES[n % len(ZONES)], "digest_hour": "07:00", "created_at": due,
             "topics": [] if n % 3 else [TOPICS[n % len(TOPICS)], TOPICS[(n + 1) % 5]],
             "next_digest_at": due} for n in range(subscribers)]
    with engine.begin() as db:
        for start in range(0, len(rows), 10_000):
            db.execute(SUBSCRIBERS.insert(), rows[start : start + 10_000])
    engine.dispose()


def main(subscribers: int = 100_000) -> None:
    port = free_port()
    server, count = serve(sink, port)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        bot = Alertbot.make(tmp, TOML,
                            SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SECURITY="none",
                            EMAIL_FROM="Desk <alerts@desk.example>")
        url = bot.env["DATABASE_URL"]
        database.upgrade(url)
        started = time.perf_counter()
        seed(url, tmp, subscribers, datetime.now(UTC))
        seeded = time.perf_counter() - started

        started = time.perf_counter()
        # --now: every subscriber's digest for their local today, whatever their zone's hour.
        command = [sys.executable, *PROFILE, "-m", "bot", "digest", "send", "--now"]
        result = subprocess.run(command, env=bot.env, cwd=tmp, capture_output=True, text=True,
                                timeout=3600)
        elapsed = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    server.terminate()
    if result.returncode != 0:
        sys.exit(f"digest send failed:\n{result.stderr[-3000:]}")
    print(describe())
    print(f"{subscribers:,} daily subscribers, 20 action items (seeded in {seeded:.1f} s)")
    print(f"  alertbot digest send: {result.stdout.strip()}")
    print(f"  {count.value:,} emails accepted by the SMTP sink in {elapsed:.1f} s = "
          f"{count.value / elapsed:,.0f} emails/s (planning, rendering, SMTP; start-up included)")
    print(f"  peak RSS of alertbot digest send: {rss:.0f} MB")


if __name__ == "__main__":
    if "--profile" in sys.argv:
        sys.argv.remove("--profile")
        PROFILE.extend(["-m", "cProfile", "-o", "/tmp/digest.prof"])
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
