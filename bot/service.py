"""The service: one event loop for the HTTP server, the scheduler and the delivery workers.

`Service` wires the pieces together; `run()` serves forever, `check()` does one pass for cron.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot import outbox
from bot.db import Database
from bot.delivery import Clock, Dispatcher, utcnow
from bot.metrics import Metrics
from bot.outbox import daily as digests
from bot.pipeline import Pipeline, Report
from bot.readers import subscribers
from bot.readers.subscribers import secret_key, verify_token
from bot.settings import Config
from bot.slack_app import create_slack_app
from bot.sources import files
from bot.sources.http import HttpSource, SourceError
from bot.stories.parsing import parse_batch
from bot.transports import Transport
from bot.transports.files import EmailFileTransport, SlackFileTransport
from bot.transports.slack import SlackTransport
from bot.transports.smtp import SmtpTransport
from bot.web.app import create_app

log = logging.getLogger(__name__)
CHECK_LONGEST_WAIT = timedelta(seconds=30)  # `alertbot check` waits out a Retry-After up to 30 s
PARSE_INLINE_BYTES = 64 * 1024
DIGEST_EVERY = timedelta(seconds=10)  # how often due daily digests are looked for
# On SIGTERM, how long deliveries in flight may take to finish: within Docker's and
# Kubernetes' default 10 s (then SIGKILL), with room for the HTTP server to stop first.
STOP_GRACE = timedelta(seconds=5)


def build_transports(config: Config) -> dict[str, Transport]:
    """Real transports where credentials exist, else writers under the outbox folder (said once)."""
    settings = config.settings
    transports: dict[str, Transport] = {}
    if settings.slack_bot_token is not None:
        transports["slack"] = SlackTransport(
            settings.slack_bot_token.get_secret_value(), settings.slack_api_url,
            timeout=config.desk.slack.timeout.total_seconds(),
        )
    else:
        folder = settings.outbox_dir / "slack"
        log.warning("no SLACK_BOT_TOKEN: Slack messages are written to %s/", folder)
        transports["slack"] = SlackFileTransport(folder)
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        transports["email"] = SmtpTransport(
            settings.smtp_host, settings.smtp_port, settings.smtp_security,
            settings.smtp_username, password, connections=config.desk.email.connections,
        )
    else:
        folder = settings.outbox_dir / "email"
        log.warning("no SMTP_HOST: emails are written to %s/ as .eml files", folder)
        transports["email"] = EmailFileTransport(folder)
    return transports


class Service:
    def __init__(self, config: Config, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.db = Database(config.settings.database_url.get_secret_value())
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(self.db, config, build_transports(config),
                                     secret_key(config.settings), clock, metrics=self.metrics)
        self.pipeline = Pipeline(self.db, config, self.dispatcher.wake, self.metrics)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._seen: dict[Path, tuple[float, int]] = {}
        self._feeds = {
            number: HttpSource(source.url, source.poll_interval, source.timeout)
            for number, source in enumerate(config.desk.sources)
            if source.kind == "http" and source.url
        }
        self._session: aiohttp.ClientSession | None = None

    # -- doors ------------------------------------------------------------------------------

    async def push(self, body: bytes) -> dict[str, Any]:
        """POST /api/stories: parse (UnusableInput propagates as 400), ingest at once."""
        # A big body parses off the loop (5 MB takes ~0.3 s); a single story is quicker inline
        # than the thread hop.
        batch = (await asyncio.to_thread(parse_batch, body) if len(body) > PARSE_INLINE_BYTES
                 else parse_batch(body))
        report = await self.pipeline.ingest(batch, "push", self.clock())
        return asdict(report)

    async def unsubscribe(self, token: str, act: bool) -> str | None:
        """Check an unsubscribe token; with `act`, remove the address it names (idempotent)."""
        address = verify_token(self.dispatcher.key, token)
        if address is not None and act:
            removed = await self.db.write(subscribers.remove, address)
            log.info("unsubscribed %s%s", address, "" if removed else " (already)")
        return address

    async def exposition(self) -> bytes:
        """GET /metrics: counters kept in memory, the outbox depth read now."""
        return self.metrics.exposition(await self.db.read(outbox.depth))

    def _ran(self, job: str) -> None:
        self.metrics.job_last_run.labels(job).set(self.clock().timestamp())

    async def ready(self) -> tuple[dict[str, str], dict[str, str]]:
        """What stops this replica serving (problems: /readyz answers 503), and what is wrong
        beyond it (degraded: a source or a peer failing, the same for every replica)."""
        problems: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2)
        except Exception as exc:  # any failure means "not ready"; say which
            problems["database"] = f"unreachable: {type(exc).__name__}"
        if not self.scheduler.running:
            problems["scheduler"] = "not running"
        degraded = {f"source {feed.url}": f"{feed.last_error} ({feed.failures} in a row)"
                    for feed in self._feeds.values() if feed.last_error}
        degraded.update({transport: f"sends failing since {since:%H:%M:%S} UTC: {error}"
                         for transport, (since, error) in self.dispatcher.failing.items()})
        return problems, degraded

    # -- scheduled work ---------------------------------------------------------------------

    async def poll(self, number: int, only_changed: bool = True) -> Report:
        """Read source `number` and ingest what it holds. Unchanged files are skipped in `run`."""
        try:
            return await self._poll(number, only_changed)
        finally:
            self._ran(f"poll-{number}")

    async def _poll(self, number: int, only_changed: bool) -> Report:
        source = self.config.desk.sources[number]
        if source.kind == "http":
            return await self._poll_http(self._feeds[number])
        report = Report()
        if source.path is None:
            return report
        for file in files.files_of(source.path):
            try:
                stat = file.stat()
            except OSError as exc:
                log.error("file source %s: %s", file, exc.strerror)
                continue
            signature = (stat.st_mtime, stat.st_size)
            if only_changed and self._seen.get(file) == signature:
                continue
            started = time.perf_counter()  # parsing included
            # Reading and parsing run off the event loop: HTTP and deliveries carry on.
            for path, batch in await asyncio.to_thread(files.read_all, file):
                if isinstance(batch, str):
                    log.error("file source: %s", batch)
                    continue
                done = await self.pipeline.ingest(batch, f"file:{path}", self.clock())
                elapsed = time.perf_counter() - started
                log.info("read %s: %d stored, %d unchanged, %d rejected in %.2f s (%.0f/s)",
                         path, len(done.accepted), len(done.unchanged), len(done.rejected),
                         elapsed, len(batch.stories) / max(elapsed, 1e-9))
                report.merge(done)
            self._seen[file] = signature
        return report

    async def _poll_http(self, feed: HttpSource) -> Report:
        """One poll of an http source; a failure backs that source off and is logged once."""
        now = self.clock()
        if feed.waiting(now):
            return Report()
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.perf_counter()
        try:
            fetched = await feed.fetch(self._session)
        except SourceError as exc:
            delay = feed.failed(now, str(exc))
            log.warning("http source %s %s; next try in %.0f s (failure %d in a row)",
                        feed.url, exc, delay.total_seconds(), feed.failures)
            return Report()
        if fetched is None:
            feed.succeeded(None)
            log.debug("http source %s: not modified", feed.url)
            return Report()
        report = await self.pipeline.ingest(fetched.batch, f"http:{feed.url}", self.clock())
        feed.succeeded(fetched)  # only now: stories that failed to store are fetched again
        log.info("read %s: %d stored, %d unchanged, %d rejected in %.2f s", feed.url,
                 len(report.accepted), len(report.unchanged), len(report.rejected),
                 time.perf_counter() - started)
        return report

    async def tick(self) -> None:
        """Close batch windows that have run out, and return expired leases to the queue."""
        now = self.clock()
        recovered = await self.db.write(outbox.recover_leases, now)
        if recovered:
            log.warning("%s deliveries returned to pending after their lease ran out", recovered)
        await self.pipeline.flush(now)
        if recovered:
            self.dispatcher.wake()
        self._ran("tick")

    async def plan_digests(self, force: bool = False) -> digests.Tally:
        """Plan every daily digest that is due (`force`: every subscriber's, for today)."""
        tally, after = digests.Tally(), 0
        now = self.clock()
        while True:
            chunk, last = await self.db.write(digests.plan_chunk, self.config.desk, now, force,
                                              after)
            if last is None:
                break
            tally.merge(chunk)
            after = last
            if chunk.planned:
                self.dispatcher.wake()
        self._ran("digests")
        if tally.planned or tally.missed or tally.already:
            log.info("daily digests: %d planned, %d empty (not sent), %d already planned, "
                     "%d missed while down", tally.planned, tally.empty, tally.already,
                     tally.missed)
        return tally

    def _schedule(self) -> None:
        for number, source in enumerate(self.config.desk.sources):
            self.scheduler.add_job(
                self.poll, "interval", args=[number], id=f"poll-{number}",
                seconds=source.poll_interval.total_seconds(), next_run_time=self.clock(),
                max_instances=1, coalesce=True, misfire_grace_time=60, replace_existing=True,
            )
        self.scheduler.add_job(self.tick, "interval", seconds=1, id="tick", max_instances=1,
                               coalesce=True, misfire_grace_time=5, replace_existing=True)
        # Idempotent everywhere: a digest's unique (subscriber, local date) key and the
        # SKIP LOCKED claim of due subscribers let every replica run this job.
        self.scheduler.add_job(self.plan_digests, "interval", seconds=DIGEST_EVERY.total_seconds(),
                               id="digests", next_run_time=self.clock(), max_instances=1,
                               coalesce=True, misfire_grace_time=300, replace_existing=True)

    # -- entry points -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled: HTTP server, scheduler and delivery workers on this loop."""
        settings = self.config.settings
        token = settings.ingest_token.get_secret_value() if settings.ingest_token else None
        if token is None:
            log.warning("no ALERTBOT_INGEST_TOKEN: POST /api/stories answers 401")
        lease, timeout = self.config.desk.delivery.lease, self.config.desk.slack.timeout
        if lease <= 2 * timeout:  # a Slack send may take two calls (one retry on a reset)
            log.warning("[delivery] lease (%s s) is not longer than two Slack calls (2 × [slack] "
                        "timeout = %s s): a send still in progress when its lease runs out is "
                        "sent again", lease.total_seconds(), 2 * timeout.total_seconds())
        slack = create_slack_app(self.config, self.db, self.dispatcher.wake)
        socket_mode = None
        if slack is not None and settings.slack_app_token is not None:
            # Socket Mode instead of POST /slack/events: Slack sends over a WebSocket.
            socket_mode = AsyncSocketModeHandler(slack, settings.slack_app_token.get_secret_value())
        secret = settings.slack_signing_secret
        app = create_app(self.push, self.ready, token, None if socket_mode else slack,
                         self.unsubscribe, self.exposition,
                         signing_secret=secret.get_secret_value() if secret else "",
                         answered=self.metrics.commands_answered)
        server = uvicorn.Server(uvicorn.Config(
            app, host=settings.http_host, port=settings.http_port, log_level="warning",
            access_log=False, lifespan="off",
        ))
        self._schedule()
        self.scheduler.start()
        workers = asyncio.create_task(self.dispatcher.run())
        try:
            if socket_mode is not None:
                await socket_mode.connect_async()  # type: ignore[no-untyped-call]
                log.info("Slack app connected in Socket Mode")
            log.info("alertbot listening on http://%s:%s", settings.http_host, settings.http_port)
            # Start-up left ~125,000 objects (Bolt, SQLAlchemy, pydantic, templates) that live
            # as long as the process; a full garbage collection scanned them all, stalling the
            # event loop ~60 ms, and that showed as the slowest slash-command answers. Frozen,
            # collections scan only what was made after.
            gc.collect()
            gc.freeze()
            if threading.current_thread() is threading.main_thread():
                # uvicorn catches SIGTERM, stops, then raises it again for whoever handled it
                # before; by default that kills the process before what is in flight settles.
                signal.signal(signal.SIGTERM, lambda number, frame: None)
            await server.serve()
        finally:
            workers.cancel()  # claim nothing more, then let what is in flight settle
            await asyncio.gather(workers, return_exceptions=True)
            await self.dispatcher.finish(STOP_GRACE.total_seconds())
            if socket_mode is not None:
                await socket_mode.close_async()  # type: ignore[no-untyped-call]
            await self.close()

    async def check(self) -> dict[str, int]:
        """One pass for cron: poll every source, close every window, deliver what is due."""
        report = Report()
        for number in range(len(self.config.desk.sources)):
            report.merge(await self.poll(number, only_changed=False))
        now = self.clock()
        await self.db.write(outbox.recover_leases, now)
        await self.pipeline.flush(now, close_windows=True)
        await self.plan_digests()
        await self.dispatcher.drain(CHECK_LONGEST_WAIT)
        outcome = self.dispatcher.outcome
        return {"stored": len(report.accepted), "rejected": len(report.rejected),
                "sent": outcome.total("sent"),
                "retrying": outcome.total("failed") + outcome.total("postponed"),
                "dead": outcome.total("dead")}

    async def send_digests(self, force: bool) -> dict[str, int]:
        """`alertbot digest send [--now]`: plan due (or all) daily digests and deliver them."""
        await self.db.write(outbox.recover_leases, self.clock())
        tally = await self.plan_digests(force)
        await self.dispatcher.drain(CHECK_LONGEST_WAIT)
        outcome, daily = self.dispatcher.outcome, ("daily",)
        # Other due rows go out in the same pass (as with `check`); the summary counts digests.
        return {"planned": tally.planned, "empty": tally.empty, "already": tally.already,
                "sent": outcome.total("sent", daily),
                "retrying": outcome.total("failed", daily) + outcome.total("postponed", daily),
                "dead": outcome.total("dead", daily)}

    async def send_test(self, transport: str, address: str) -> Any:
        """`alertbot test slack|email`: one marked test message through the real transport."""
        now = self.clock()
        row_id = await self.db.write(lambda db: outbox.add(
            db, now, dedupe=f"test:{transport}:{address}:{now.isoformat()}",
            transport=transport, target=f"{transport}:{address}", kind="test",
            reason="test message asked for with `alertbot test`"))
        assert row_id is not None  # the key holds this moment, so it is new
        await self.dispatcher.send_now(row_id)
        return await self.db.read(outbox.get, row_id)

    async def close(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._session is not None:
            await self._session.close()
        await self.dispatcher.stop()
        self.db.close()
