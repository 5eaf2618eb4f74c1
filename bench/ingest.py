"""10,000 stories from a file: parsed, stored and evaluated (issue 2's throughput benchmark).

Two measurements:
1. in process: `Chunks` (parsed as the file source parses it) + `Pipeline.ingest` on a fresh
   SQLite database, 3 runs, median;
2. through `alertbot run`: a file source holding the 10,000 stories, timed from the service's
   first poll until every story is stored, with the service's peak RSS.
Half the stories are action items; there are two Slack routes and one instant subscriber.

`--routes N` measures the push door as `bench/vs_alertmanager.py` drives it, without
Alertmanager: 50 pushes of 100 stories (JSON arrays, each parsed as the service parses a push)
against N Slack routes with one topic each and a zero batch window, plus one instant email
reader; CPU seconds of parsing, storing, matching and planning, in process (no deliveries).
Usage: python bench/ingest.py [N] | python bench/ingest.py --routes 100 [--pushes 50]; either
with `--profile` (a fourth file run, or the first push run, under cProfile: its top entries).
The in-process file figure gives CPU seconds beside wall time: on a shared machine the wall
time measures the load as much as the code.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb
from bot import db as database
from bot import pipeline as pipeline_module
from bot.db import Database
from bot.pipeline import Pipeline
from bot.readers import subscribers
from bot.stories.parsing import Chunks, parse_batch
from tests.conftest import make_config
from tests.fakes import FakeSlack
from tests.process import Alertbot

TOPICS = ["launch", "satellites", "procurement", "cyber", "missile-defense", "budget"]
ROUTES = [{"channel": "C0SPACEOPS"}, {"channel": "C0LAUNCHES", "topics": ["launch"]}]


def stories(count: int) -> str:
    rng = random.Random(2026)
    now = datetime.now(UTC)
    lines = []
    for n in range(count):
        outlets = rng.sample(["SpaceNews", "Reuters", "FT.com", "AP", "Breaking Defense"],
                             rng.choice([1, 2, 3]))
        lines.append(json.dumps({
            "id": f"story-{n}", "url": f"https://desk.example/s/{n}",
            "title": f"Story {n}: satellite operator reports anomaly on orbit",
            "scored_at": (now - timedelta(minutes=rng.randint(1, 600))).isoformat(),
            "version": 1, "impact": rng.choice([6, 7, 7.9, 8, 8.5, 9, 10]),
            "sentiment": rng.choice(["negative", "neutral", "very_negative"]),
            "topics": rng.sample(TOPICS, 2),
            "sources": [{"outlet": o, "title": f"Report by {o}",
                         "url": f"https://{o.replace(' ', '')}.example/{n}"} for o in outlets],
            "key_takeaways": ["Operator confirms anomaly", "Insurance claim likely"],
            "key_facts": ["Launched in 2024", "Serves three government customers"],
            "analysis": "Second anomaly in the series this year.",
        }))
    return "\n".join(lines) + "\n"


async def in_process(data: bytes, tmp: Path, profile: cProfile.Profile | None = None
                     ) -> tuple[float, float]:
    """Wall and CPU seconds (`process_time`: every thread) of one in-process ingest."""
    url = f"sqlite:///{tmp / f'bench-{time.monotonic_ns()}.db'}"
    database.upgrade(url)
    config = make_config(tmp, url, {"slack": {"routes": ROUTES}})
    db = Database(url)
    await db.write(subscribers.add, subscribers.validate(
        "desk@desk.example", "instant", "UTC", (), "07:00"), datetime.now(UTC))
    pipeline = Pipeline(db, config)
    take = pipeline_module._next
    if profile:  # one profile for the two worker threads: parsing and the database
        evaluate = pipeline._evaluate

        def profiled(*args: Any) -> Any:
            return profile.runcall(evaluate, *args)

        pipeline._evaluate = profiled  # type: ignore[method-assign]
        pipeline_module._next = lambda chunks: profile.runcall(take, chunks)
    started, cpu = time.perf_counter(), time.process_time()
    # as the file source hands it over: parsed a chunk at a time, each chunk then stored
    try:
        report = await pipeline.ingest(Chunks(data), "bench", datetime.now(UTC))
    finally:
        pipeline_module._next = take
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(report.accepted) == data.count(b"\n"), report.rejected[:3]
    db.close()
    return elapsed, cpu


def through_service(folder: Path, tmp: Path, count: int) -> tuple[float, float, str]:
    slack = FakeSlack().start()
    toml = (f'[[sources]]\nkind = "file"\npath = "{folder}"\npoll_interval = "1h"\n\n'
            '[slack]\npacing = "0s"\n'
            + "".join(f'\n[[slack.routes]]\nchannel = "{r["channel"]}"\n' for r in ROUTES))
    bot = Alertbot.make(tmp, toml, slack.url)
    bot.cli("db", "upgrade")
    started = time.monotonic()
    bot.start()
    stored = 0
    with sqlite3.connect(tmp / "alertbot.db") as db:
        while stored < count:
            time.sleep(0.02)
            stored = db.execute("SELECT count(*) FROM stories").fetchone()[0]
    elapsed = time.monotonic() - started
    assert bot.process is not None
    rss = peak_rss_mb(bot.process.pid)
    bot.stop()
    slack.stop()
    # The service logs JSON lines when not on a terminal (bot/logs.py).
    messages = [json.loads(line)["message"] for line in bot.log().splitlines() if line.strip()]
    [logged] = [message for message in messages if message.startswith("read ")]
    return elapsed, rss, logged


def pushes(count: int, routes: int, size: int = 100) -> list[bytes]:
    """`count` push bodies of `size` stories, as bench/vs_alertmanager.py sends them: one
    story per route topic in turn, impact 9, two outlets."""
    now = datetime.now(UTC).isoformat()
    bodies = []
    for p in range(count):
        bodies.append(json.dumps([{
            "id": f"push-{p}-{n}", "url": f"https://desk.example/bench/{p}-{n}",
            "title": f"Bench alert {p}-{n}: operator loses contact with satellite {n}",
            "scored_at": now, "impact": 9, "sentiment": "negative",
            "topics": [f"t{(p * size + n) % routes:03d}"],
            "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{p}-{n}"},
                        {"outlet": "Reuters", "url": f"https://reuters.example/{p}-{n}"}],
            "key_takeaways": ["Operator confirms loss of contact"],
            "key_facts": ["Launched in 2024", "Serves three government customers"],
        } for n in range(size)]).encode())
    return bodies


async def pushed(bodies: list[bytes], routes: int, tmp: Path, profile: bool) -> tuple[float, int]:
    """CPU seconds to parse and ingest every body in turn, as `Service.push` does; rows planned."""
    url = f"sqlite:///{tmp / f'push-{time.monotonic_ns()}.db'}"
    database.upgrade(url)
    config = make_config(tmp, url, {
        "slack": {"pacing": "0s", "routes": [
            {"channel": f"C0BENCH{n:03d}", "topics": [f"t{n:03d}"], "batch_window": "0s"}
            for n in range(routes)]},
        "email": {"batch_window": "0s"}})
    db = Database(url)
    await db.write(subscribers.add, subscribers.validate(
        "reader@bench.example", "instant", "UTC", (), "07:00"), datetime.now(UTC))
    pipeline = Pipeline(db, config)
    profiler = cProfile.Profile() if profile else None
    on_db = cProfile.Profile()  # the database thread's share, which `profiler` does not see
    if profiler:
        evaluate = pipeline._evaluate

        def profiled(*args: Any) -> Any:
            return on_db.runcall(evaluate, *args)

        pipeline._evaluate = profiled  # type: ignore[method-assign]
    planned = 0
    started = time.process_time()
    if profiler:
        profiler.enable()
    for body in bodies:
        report = await pipeline.ingest(parse_batch(body), "push", datetime.now(UTC))
        assert not report.rejected, report.rejected[:3]
        planned += report.planned
    if profiler:
        profiler.disable()
    elapsed = time.process_time() - started
    db.close()
    if profiler:
        stats = pstats.Stats(profiler)
        stats.add(on_db)
        stats.sort_stats("cumulative").print_stats(45)
    return elapsed, planned


def push_main(routes: int, count: int, profile: bool) -> None:
    load_before = " ".join(f"{n:.2f}" for n in os.getloadavg())
    bodies = pushes(count, routes)
    with tempfile.TemporaryDirectory() as name:
        runs = [asyncio.run(pushed(bodies, routes, Path(name), profile and n == 0))
                for n in range(3)]
    median = statistics.median(cpu for cpu, _ in runs)
    stories = count * 100
    print(f"{describe()}; load average before the run {load_before}")
    print(f"{count} pushes of 100 stories against {routes} Slack routes + 1 instant reader, "
          f"{runs[0][1]} rows planned:")
    print(f"  CPU median {median:.2f} s of 3 runs = {median / stories * 1e3:.3f} ms a story "
          f"(runs: {', '.join(f'{cpu:.2f}' for cpu, _ in runs)} s)")


def main(count: int = 10_000, profile: bool = False) -> None:
    load_before = " ".join(f"{n:.2f}" for n in os.getloadavg())
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder = tmp / "incoming"
        folder.mkdir()
        data = stories(count).encode()
        (folder / "stories.jsonl").write_bytes(data)
        runs = [asyncio.run(in_process(data, tmp)) for _ in range(3)]
        if profile:  # a fourth run, profiled, so that the figures above are not
            profiler = cProfile.Profile()
            asyncio.run(in_process(data, tmp, profiler))
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        (tmp / "service").mkdir()
        service_time, rss, logged = through_service(folder, tmp / "service", count)
    median = statistics.median(wall for wall, _ in runs)
    cpu = statistics.median(cpu for _, cpu in runs)
    print(f"{describe()}; load average before the run {load_before}")
    print(f"{count} stories ({len(data) / 1e6:.1f} MB) parsed, stored and evaluated:")
    print(f"  in process: median {median:.2f} s of 3 runs = {count / median:,.0f} stories/s "
          f"(runs: {', '.join(f'{wall:.2f}' for wall, _ in runs)} s); CPU median {cpu:.2f} s "
          f"(runs: {', '.join(f'{cpu:.2f}' for _, cpu in runs)} s)")
    print(f"  alertbot run, its own log: {logged}")
    print(f"  alertbot run, from process start to all stored: {service_time:.2f} s = "
          f"{count / service_time:,.0f} stories/s (includes interpreter start-up)")
    print(f"  peak RSS of alertbot run: {rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--routes", type=int, help="the push door against this many routes")
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first push run, or a fourth file run")
    options = parser.parse_args()
    if options.routes:
        push_main(options.routes, options.pushes, options.profile)
    else:
        main(options.count, options.profile)
