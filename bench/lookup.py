"""`/story` look-ups through /slack/events against 1,000,000 stories (issue 3's benchmark).

Builds a SQLite database of N stories (Zipf-like vocabulary, tests/corpus.py) through the
ingest pipeline, starts `alertbot run` on it, then 20 concurrent clients send signed slash
commands: by id (random stories) and by words (two words from a random story's title).
Prints p50/p99 per kind, the service's CPU per request and its peak RSS.

Three processes, so that none charges its work to another's GIL: `alertbot run`, the local
Slack server that receives the answers at the response_url (its own process, uvloop, as
bench/sinks.py's), and the clients (this process). A client sends a command, then asks the
sink for that answer's arrival time (a long poll); the time is from sending to arrival, both
`time.monotonic()`, one clock for every process on Linux.
Usage: python bench/lookup.py [N] [REQUESTS] [FOLDER] [SEED]  (FOLDER keeps the database for
reuse; a kept database is upgraded to the current schema before the run)

SEED asks about stories drawn afresh with that seed from the whole corpus (regenerated, ~30 s
for a million) instead of the sample kept with the database, which every run asks about: a
page cache cold for them, as far as the machine lets it be (docs/performance.md).
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
from collections.abc import Coroutine
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb, percentile
from bench.sinks import Sink, fast_loop
from bot import db as database
from bot.db import Database
from bot.pipeline import Pipeline
from bot.stories.parsing import parse_batch
from tests.conftest import make_config
from tests.corpus import lines
from tests.fakes import free_port, slack_signature
from tests.process import Alertbot

SECRET = "bench-signing-secret"
CLIENTS = 20
SLICE = 100_000
R = TypeVar("R")


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


def answer_sink(port: int, pipe: Connection, ready: Any) -> None:
    """The local Slack server, in a process of its own: every Web API method answers ok, and
    POST /respond/<token> (a response_url) keeps its arrival time, which GET /arrived/<token>
    returns once it is there (the client's long poll)."""
    from aiohttp import web

    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    async def respond(request: web.Request) -> web.Response:
        await request.read()
        token = request.match_info["token"]
        arrived[token] = time.monotonic()
        event = waiting.pop(token, None)
        if event is not None:
            event.set()
        return web.Response(text="ok")

    async def arrival(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token not in arrived:
            event = waiting.setdefault(token, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), 30)
            except TimeoutError:
                return web.Response(status=504)
        return web.Response(text=repr(arrived.pop(token)))

    async def web_api(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/respond/{token}", respond)
    app.router.add_get("/arrived/{token}", arrival)
    app.router.add_route("*", "/{tail:.*}", web_api)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, backlog=1024, print=None, access_log=None,
                handle_signals=False, loop=fast_loop())


def signed(text: str, response_url: str) -> tuple[str, dict[str, str]]:
    body = urlencode({"command": "/story", "text": text, "team_id": "T1", "channel_id": "C1",
                      "user_id": "U1", "response_url": response_url, "trigger_id": "1"})
    ts = str(int(time.time()))
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": ts,
                  "X-Slack-Signature": slack_signature(SECRET, ts, body)}


async def load(url: str, sink: str, queries: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Each client sends a /story and waits for its answer at the response_url (not just the
    ack) before sending the next; the time is from sending to that answer's arrival."""
    timings: dict[str, list[float]] = {"id": [], "words": []}
    pending = iter(enumerate(queries))
    run = f"{os.getpid()}-{time.monotonic_ns()}"

    async def client() -> None:
        # A pool of its own per client: its commands and its long polls never queue behind
        # another client's.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            for n, (kind, text) in pending:
                token = f"{run}-{n}"
                body, headers = signed(text, f"{sink}/respond/{token}")
                started = time.monotonic()
                async with http.post(f"{url}/slack/events", data=body, headers=headers) as ack:
                    assert ack.status == 200, await ack.text()
                    await ack.read()
                async with http.get(f"{sink}/arrived/{token}") as answer:
                    assert answer.status == 200, f"no answer to {kind} {text!r}"
                    at = float(await answer.text())
                timings[kind].append((at - started) * 1000)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return timings


def run(clients: Coroutine[Any, Any, R]) -> R:
    """The clients on uvloop (as the server and the sink): less of the clients' own time
    between a send's timestamp and the send."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(clients)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/PID/stat), a figure the shared machine's
    noise moves less than latency: what the server spends per request."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, apart (the system part is mostly sockets)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def fresh_sample(count: int, seed: int, size: int = 2000) -> list[str]:
    """`size` stories of the `count` the database was built from (the corpus is the same for
    the same count), drawn with `seed`, read from nowhere but the generator."""
    wanted = set(random.Random(seed).sample(range(count), size))
    return [line for n, line in enumerate(lines(count)) if n in wanted]


def main(count: int = 1_000_000, requests: int = 2000, folder: str | None = None,
         seed: int | None = None) -> None:
    load_before = " ".join(f"{n:.2f}" for n in os.getloadavg())
    sink = Sink.start(answer_sink, free_port())
    sink_url = f"http://127.0.0.1:{sink.port}"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(folder or name)
        tmp.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{tmp / 'alertbot.db'}"
        started = time.monotonic()
        kept = tmp / "sample.txt"
        reused = kept.exists()
        if reused:  # a database built by an earlier run with the same FOLDER
            database.upgrade(url)  # to this checkout's schema (a no-op when it is there)
            sample = (kept.read_text().splitlines() if seed is None
                      else fresh_sample(count, seed))
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
        bot = Alertbot.make(tmp, '[slack]\npacing = "0s"\n', sink_url + "/api/",
                            SLACK_SIGNING_SECRET=SECRET, DATABASE_URL=url)
        earlier = len(bot.log())  # a kept folder's log holds the runs before this one
        bot.start()
        try:
            run(load(bot.url, sink_url, queries[:200]))  # warm-up
            assert bot.process is not None
            split = cpu_split(bot.process.pid)
            cpu, sink_cpu = sum(split), cpu_seconds(sink.pid)
            clients_cpu = time.process_time()
            timings = run(load(bot.url, sink_url, queries))
            user, system = (after - before for after, before
                            in zip(cpu_split(bot.process.pid), split, strict=True))
            cpu = user + system
            sink_cpu = cpu_seconds(sink.pid) - sink_cpu
            clients_cpu = time.process_time() - clients_cpu
            rss = peak_rss_mb(bot.process.pid)
        finally:
            bot.stop()
            sink.stop()
        # Look-ups waiting for the disk go to reader threads (bot/db/lookups.py).
        said = bot.log()[earlier:]
        moved = (said.count("look-ups on reader threads"), said.count("look-ups back on the"))
    load_after = " ".join(f"{n:.2f}" for n in os.getloadavg())
    print(describe())
    print(f"{count:,} stories ({'reused' if reused else f'ingested in {built:.0f} s'}); "
          f"database {size:,.0f} MB; asked about "
          f"{'the kept sample' if seed is None else f'stories drawn afresh with seed {seed}'}")
    print(f"/story through /slack/events to its answer at the response_url, {CLIENTS} "
          f"concurrent clients, {requests} requests of each kind:")
    for kind, values in timings.items():
        p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
        print(f"  by {kind:5}: p50 {p50:.1f} ms · p90 {p90:.1f} ms · p99 {p99:.1f} ms · "
              f"max {max(values):.1f} ms")
    print(f"  CPU of alertbot run: {cpu * 1000 / len(queries):.2f} ms a request "
          f"({cpu:.1f} s for {len(queries)}: user {user:.1f}, system {system:.1f}); "
          f"the sink's {sink_cpu:.1f} s, the clients' {clients_cpu:.1f} s")
    print(f"  load average before the run {load_before}, after {load_after}")
    print(f"  peak RSS of alertbot run: {rss:.0f} MB")
    print(f"  look-ups moved to reader threads {moved[0]} times, back to the event loop "
          f"{moved[1]} (waiting for the disk; the service's log)")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]), *sys.argv[3:4],
         *(int(arg) for arg in sys.argv[4:5]))
