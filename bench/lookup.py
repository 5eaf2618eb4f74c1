"""`/story` look-ups through /slack/events against 1,000,000 stories (issue 3's benchmark).

Builds a SQLite database of N stories (Zipf-like vocabulary, tests/corpus.py) through the
ingest pipeline, starts `alertbot run` on it, then 20 concurrent clients send signed slash
commands: by id (random stories) and by words (two words from a random story's title).
Prints p50/p99 per kind and the service's peak RSS.
Usage: python bench/lookup.py [N] [REQUESTS] [FOLDER]  (FOLDER keeps the database for reuse)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb, percentile
from bot import db as database
from bot.db import Database
from bot.pipeline import Pipeline
from bot.stories.parsing import parse_batch
from tests.conftest import make_config
from tests.corpus import lines
from tests.fakes import Call, FakeSlack, slack_signature
from tests.process import Alertbot

SECRET = "bench-signing-secret"
CLIENTS = 20
SLICE = 100_000


async def build(url: str, tmp: Path, count: int) -> list[str]:
    """Ingest `count` stories; return a sample of their lines for queries."""
    database.upgrade(url)
    db = Database(url)
    pipeline = Pipeline(db, make_config(tmp, url, {"slack": {"routes": []}}))
    sample: list[str] = []
    generated = lines(count)
    rng = random.Random(1)
    for _ in range(0, count, SLICE):
        chunk = list(itertools.islice(generated, SLICE))
        sample += rng.sample(chunk, min(200, len(chunk)))
        report = await pipeline.ingest(parse_batch("\n".join(chunk)), "bench", datetime.now(UTC))
        assert not report.rejected
    db.close()
    return sample


class AnsweringSlack(FakeSlack):
    """The local Slack server, telling the benchmark when an answer reaches its response_url:
    every listener acks at once and answers there, so that arrival is what a person waits for."""

    def __init__(self) -> None:
        # socketserver listens with a backlog of 5: 20 answers arriving at once overflowed it,
        # and each dropped connection waited out TCP's 1 s retransmit (p99 ~1.1 s, the sink's).
        ThreadingHTTPServer.request_queue_size = 128
        super().__init__()
        self.waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    def _record(self, call: Call) -> None:
        super()._record(call)
        found = self.waiting.pop(call.method, None)
        if found is not None:
            loop, event = found
            loop.call_soon_threadsafe(event.set)


def signed(text: str, response_url: str) -> tuple[str, dict[str, str]]:
    body = urlencode({"command": "/story", "text": text, "team_id": "T1", "channel_id": "C1",
                      "user_id": "U1", "response_url": response_url, "trigger_id": "1"})
    ts = str(int(time.time()))
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": ts,
                  "X-Slack-Signature": slack_signature(SECRET, ts, body)}


async def load(url: str, slack: AnsweringSlack, queries: list[tuple[str, str]]
               ) -> dict[str, list[float]]:
    """Each client sends a /story and waits for its answer at the response_url (not just the
    ack) before sending the next; the time is from sending to that answer's arrival."""
    timings: dict[str, list[float]] = {"id": [], "words": []}
    pending = iter(enumerate(queries))
    loop = asyncio.get_running_loop()

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            for n, (kind, text) in pending:
                path = f"respond/{n}-{time.monotonic_ns()}"
                answered = asyncio.Event()
                slack.waiting[path] = (loop, answered)
                body, headers = signed(text, f"{slack.url}{path}")
                started = time.perf_counter()
                ack = await http.post(f"{url}/slack/events", content=body, headers=headers)
                assert ack.status_code == 200, ack.text
                await asyncio.wait_for(answered.wait(), 30)
                timings[kind].append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return timings



def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/PID/stat), a figure the shared machine's
    noise moves less than latency: what the server spends per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(count: int = 1_000_000, requests: int = 2000, folder: str | None = None) -> None:
    load_before = " ".join(f"{n:.2f}" for n in os.getloadavg())
    slack = AnsweringSlack().start()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(folder or name)
        tmp.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{tmp / 'alertbot.db'}"
        started = time.monotonic()
        kept = tmp / "sample.txt"
        if kept.exists():  # a database built by an earlier run with the same FOLDER
            sample = kept.read_text().splitlines()
        else:
            sample = asyncio.run(build(url, tmp, count))
            kept.write_text("\n".join(sample))
        built = time.monotonic() - started
        size = (tmp / "alertbot.db").stat().st_size / 2**20
        rng = random.Random(2)
        queries = []
        for _ in range(requests):
            story = json.loads(rng.choice(sample))
            queries.append(("id", story["id"]))
            queries.append(("words", " ".join(rng.sample(story["title"].lower().split(), 2))))
        rng.shuffle(queries)
        bot = Alertbot.make(tmp, '[slack]\npacing = "0s"\n', slack.url,
                            SLACK_SIGNING_SECRET=SECRET, DATABASE_URL=url).start()
        try:
            asyncio.run(load(bot.url, slack, queries[:200]))  # warm-up
            assert bot.process is not None
            cpu = cpu_seconds(bot.process.pid)
            timings = asyncio.run(load(bot.url, slack, queries))
            cpu = cpu_seconds(bot.process.pid) - cpu
            rss = peak_rss_mb(bot.process.pid)
        finally:
            bot.stop()
            slack.stop()
    print(describe())
    print(f"{count:,} stories ({'reused' if built < 5 else f'ingested in {built:.0f} s'}); "
          f"database {size:,.0f} MB")
    print(f"/story through /slack/events to its answer at the response_url, {CLIENTS} "
          f"concurrent clients, "
          f"{requests} requests of each kind:")
    for kind, values in timings.items():
        p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
        print(f"  by {kind:5}: p50 {p50:.1f} ms · p90 {p90:.1f} ms · p99 {p99:.1f} ms · "
              f"max {max(values):.1f} ms")
    print(f"  CPU of alertbot run: {cpu * 1000 / len(queries):.2f} ms a request "
          f"({cpu:.1f} s for {len(queries)}); load average before the run {load_before}")
    print(f"  peak RSS of alertbot run: {rss:.0f} MB")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]), *sys.argv[3:4])
