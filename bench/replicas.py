"""Throughput with 1, 2 and 3 `alertbot run` replicas on one PostgreSQL (issue 5).

For each replica count, a fresh database holds Slack alerts (STORIES stories × 60 channels) and
SUBSCRIBERS daily digest readers, none of them due; the replicas start; the alerts are made due
at once, and when they are all sent, the digests. Slack and SMTP sinks run in processes of their
own, with no rate limit and no pacing. The figures come from the database's own timestamps:
alerts/s = alerts ÷ (last `sent_at` − the moment they became due); digests/s = digests ÷ (last
`sent_at` − the first digest's `created_at`), so the wait for the 10-second digest job is not
counted and planning is.
Usage: python bench/replicas.py [STORIES] [SUBSCRIBERS]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.digest import seed as seed_readers
from bench.digest import serve
from bench.digest import sink as smtp_sink
from bench.machine import describe
from bot import db as database
from bot.db import Database
from bot.pipeline import Pipeline
from bot.stories.parsing import parse_batch
from tests.conftest import PostgresServer, make_config, new_pg_database, story
from tests.fakes import free_port
from tests.process import Alertbot, until

CHANNELS = [f"C0BENCH{n:02d}" for n in range(60)]
ROUTES = [{"channel": channel} for channel in CHANNELS]
TOML = ('[delivery]\nworkers = 16\n\n[email]\nconnections = 2\n\n'
        '[slack]\npacing = "0s"\nbatch_window = "0s"\n'
        + "".join(f'\n[[slack.routes]]\nchannel = "{c}"\n' for c in CHANNELS))
LATER = timedelta(days=1)  # "not due yet"


def slack_sink(port: int, count: Synchronized[int], ready: Any) -> None:
    """A Slack Web API that says ok to everything and counts chat.postMessage calls."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("chat.postMessage"):
            with count.get_lock():
                count.value += 1
        return web.json_response({"ok": True, "channel": "C0", "ts": f"{time.time():.6f}"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def seed_alerts(url: str, tmp: Path, stories: int) -> int:
    """One story at a time, as pushes come: each becomes one alert per channel."""
    config = make_config(tmp, url, {"slack": {"pacing": "0s", "batch_window": "0s",
                                              "routes": ROUTES}})

    async def ingest() -> int:
        db = Database(url)
        pipeline = Pipeline(db, config)
        planned = 0
        for n in range(stories):
            item = story(id=f"bench-{n}", title=f"Operator loses contact with satellite {n}",
                         key_facts=[f"Fact {k} about satellite {n}" for k in range(4)])
            planned += (await pipeline.ingest(parse_batch(json.dumps(item)), "bench",
                                              datetime.now(UTC))).planned
        db.close()
        return planned

    return asyncio.run(ingest())


def run(replicas: int, server: PostgresServer, stories: int, readers: int,
        slack_port: int, smtp_port: int) -> dict[str, float]:
    url = new_pg_database(server.url)
    database.upgrade(url)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        # Alerts before readers: some readers also take instant alerts, which would add
        # emails to the alert phase.
        alerts = seed_alerts(url, tmp, stories)
        now = datetime.now(UTC)
        seed_readers(url, tmp, readers, now, due=now + LATER)
        with psycopg.connect(url) as db:
            db.execute("UPDATE deliveries SET not_before = not_before + %s", [LATER])
        bots = []
        for n in range(replicas):
            home = tmp / f"replica-{n}"
            home.mkdir()
            bots.append(Alertbot.make(
                home, TOML, f"http://127.0.0.1:{slack_port}/api/", DATABASE_URL=url,
                SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_SECURITY="none",
                EMAIL_FROM="Desk <alerts@desk.example>"))
        with ThreadPoolExecutor(replicas) as pool:
            list(pool.map(Alertbot.start, bots))
        try:
            with psycopg.connect(url, autocommit=True) as db:
                def sent(kind: str) -> int:
                    row = db.execute("SELECT count(*) FROM deliveries WHERE status = 'sent' "
                                     "AND kind = %s", [kind]).fetchone()
                    return int(row[0]) if row else 0

                due = datetime.now(UTC) + timedelta(milliseconds=500)
                # Columns hold naive UTC (bot.db.schema.UTCDateTime).
                db.execute("UPDATE deliveries SET not_before = %s", [due.replace(tzinfo=None)])
                until(lambda: sent("alert") >= alerts, 600)
                last = db.execute("SELECT max(sent_at) FROM deliveries WHERE kind = 'alert'"
                                  ).fetchone()
                assert last is not None
                alert_seconds = (last[0].replace(tzinfo=UTC) - due).total_seconds()

                db.execute("UPDATE subscribers SET next_digest_at = %s",
                           [datetime.now(UTC).replace(tzinfo=None)])
                until(lambda: sent("daily") >= readers, 1200)
                span = db.execute("SELECT min(created_at), max(sent_at) FROM deliveries "
                                  "WHERE kind = 'daily'").fetchone()
                assert span is not None
                digest_seconds = (span[1] - span[0]).total_seconds()
                if sent("alert") < alerts or sent("daily") < readers:
                    sys.exit(f"{replicas} replicas: not everything was sent in time")
        finally:
            for bot in bots:
                bot.stop()
    return {"alerts": alerts, "alerts_s": alert_seconds, "digests": readers,
            "digests_s": digest_seconds}


def main(stories: int = 100, readers: int = 20_000) -> None:
    slack_port, smtp_port = free_port(), free_port()
    slack, posts = serve(slack_sink, slack_port)
    smtp, emails = serve(smtp_sink, smtp_port)
    server = PostgresServer().start()
    with psycopg.connect(f"{server.url}/postgres") as db:
        version = db.execute("SHOW server_version").fetchone()
    results = {}
    try:
        for replicas in (1, 2, 3):
            results[replicas] = run(replicas, server, stories, readers, slack_port, smtp_port)
            figures = results[replicas]
            print(f"{replicas} replica(s): {figures['alerts']:,.0f} alerts in "
                  f"{figures['alerts_s']:.1f} s = {figures['alerts'] / figures['alerts_s']:,.0f}"
                  f"/s; {figures['digests']:,.0f} digests in {figures['digests_s']:.1f} s = "
                  f"{figures['digests'] / figures['digests_s']:,.0f}/s", flush=True)
    finally:
        server.remove()
        slack.terminate()
        smtp.terminate()
    print(describe())
    print(f"PostgreSQL {version[0] if version else '?'} on the same machine; the sinks "
          f"counted {posts.value:,} posts and {emails.value:,} emails")
    one = results[1]
    for replicas, figures in results.items():
        print(f"  {replicas} replica(s): alerts "
              f"{figures['alerts'] / figures['alerts_s']:,.0f}/s "
              f"(× {one['alerts_s'] / figures['alerts_s']:.2f}), digests "
              f"{figures['digests'] / figures['digests_s']:,.0f}/s "
              f"(× {one['digests_s'] / figures['digests_s']:.2f})")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
