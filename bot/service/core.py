"""`Service` wires the pieces together; `run()` serves forever, `check()` does one pass for cron."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import outbox
from bot.db import Database
from bot.delivery import Clock, Dispatcher, utcnow
from bot.metrics import Metrics
from bot.outbox import daily as digests
from bot.pipeline import SHORT_INGEST, Pipeline, Report
from bot.readers import subscribers
from bot.readers.subscribers import secret_key, verify_token
from bot.rules.claims import State
from bot.rules.targets import slack_targets
from bot.service import serving
from bot.service.children import Children
from bot.service.polling import Sources
from bot.service.transports import build_transports
from bot.settings import Config
from bot.slack_app.replies import close_answers
from bot.stories import actions
from bot.stories.parsing import parse_batch

log = logging.getLogger(__package__)  # "bot.service", as the log lines have always said
CHECK_LONGEST_WAIT = timedelta(seconds=30)  # `alertbot check` waits out a Retry-After up to 30 s
PARSE_INLINE_BYTES = 64 * 1024
DIGEST_EVERY = timedelta(seconds=10)  # how often due daily digests are looked for
# On SIGTERM, how long deliveries in flight may take to finish: within Docker's and
# Kubernetes' default 10 s (then SIGKILL), with room for the HTTP server to stop first.
STOP_GRACE = timedelta(seconds=5)


class Service:
    def __init__(self, config: Config, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.db = Database(config.settings.database_url.get_secret_value())
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(self.db, config, build_transports(config),
                                     secret_key(config.settings), clock, metrics=self.metrics)
        self.children = Children(config.desk.delivery.processes - 1, self.metrics)
        self.pipeline = Pipeline(self.db, config, self.wake, self.metrics)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sources = Sources(config, self.pipeline, clock)

    def wake(self) -> None:
        """New rows are committed: the workers here and in the delivery children claim now."""
        self.dispatcher.wake()
        self.children.wake()

    # -- doors ------------------------------------------------------------------------------

    async def push(self, body: bytes) -> dict[str, Any]:
        """POST /api/stories: parse (UnusableInput propagates as 400), ingest at once."""
        # A big body parses off the loop (5 MB takes ~0.3 s); a single story is quicker inline
        # than the thread hop.
        batch = (await asyncio.to_thread(parse_batch, body) if len(body) > PARSE_INLINE_BYTES
                 else parse_batch(body))
        report = await self.pipeline.ingest(batch, "push", self.clock())
        if report.planned and len(report.accepted) <= SHORT_INGEST:
            # A story or two: let the deliveries it planned start before answering. Two turns
            # of the loop: the woken workers claim (and start their tasks), then those tasks
            # render and send; answering first would put building the response on each alert's
            # path. A big push is answered at once (its deliveries would hold its answer).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return asdict(report)

    async def unsubscribe(self, token: str, act: bool) -> str | None:
        """Check an unsubscribe token; with `act`, remove the address it names (idempotent)."""
        address = verify_token(self.dispatcher.key, token)
        if address is not None and act:
            removed = await self.db.write(subscribers.remove, address)
            log.info("unsubscribed %s%s", address, "" if removed else " (already)")
        return address

    async def action_items(self, state: State) -> list[dict[str, Any]]:
        """GET /api/actionitems: the items in one state, as stored now."""
        return await self.db.read(actions.items, state)

    async def exposition(self) -> bytes:
        """GET /metrics: counters kept in memory, the outbox depth and action items read now."""
        return self.metrics.exposition(await self.db.read(outbox.depth, self.clock()),
                                       await self.db.read(actions.tally))

    def _ran(self, job: str) -> None:
        self.metrics.job_last_run.labels(job).set(self.clock().timestamp())

    async def ready(self) -> tuple[dict[str, str], dict[str, str]]:
        """What stops this replica serving (problems: /readyz answers 503), and what is wrong
        beyond it (degraded: a source or a peer failing, the same for every replica)."""
        problems: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):  # not wait_for: see Dispatcher._sleep
                await self.db.ping()
        except Exception as exc:  # any failure means "not ready"; say which
            problems["database"] = f"unreachable: {type(exc).__name__}"
        if not self.scheduler.running:
            problems["scheduler"] = "not running"
        degraded = self.sources.degraded()
        degraded.update({transport: f"sends failing since {since:%H:%M:%S} UTC: {error}"
                         for transport, (since, error) in self.dispatcher.failing.items()})
        for name, why in self.children.degraded().items():
            degraded.setdefault(name, why)
        return problems, degraded

    # -- scheduled work ---------------------------------------------------------------------

    async def poll(self, number: int, only_changed: bool = True) -> Report:
        """Read source `number` and ingest what it holds. Unchanged files are skipped in `run`."""
        try:
            return await self.sources.poll(number, only_changed)
        finally:
            self._ran(f"poll-{number}")

    async def tick(self) -> None:
        """Close batch windows that have run out, and return expired leases to the queue."""
        now = self.clock()
        recovered = await self.db.write_short(outbox.recover_leases, now)  # one UPDATE
        if recovered:
            log.warning("%s deliveries returned to pending after their lease ran out", recovered)
        await self.pipeline.flush(now)
        if recovered:
            self.wake()
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
                self.wake()
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

    async def retire_escalations(self) -> None:
        """Cancel escalations still queued that the configuration no longer asks for (an
        operator took a route's escalation or a person out, and restarted)."""
        policies = {t.address: t.escalation for t in slack_targets(self.config.desk)}
        retired = await self.db.write(outbox.retire_escalations, policies)
        if retired:
            log.info("%s queued escalations cancelled: no longer in the configuration", retired)

    async def run(self) -> None:
        """Serve until cancelled: HTTP server, scheduler and delivery workers on this loop."""
        serving.warn_about(self.config)
        await self.retire_escalations()
        app, socket_mode = serving.doors(self)
        server = serving.http_server(app, self.config.settings)
        await self.children.start()
        self._schedule()
        self.scheduler.start()
        workers = asyncio.create_task(self.dispatcher.run())
        try:
            await serving.serve(server, socket_mode, self.config.settings)
        finally:
            workers.cancel()  # claim nothing more, then let what is in flight settle
            await asyncio.gather(workers, return_exceptions=True)
            # The children settle what they have in flight meanwhile (their stdin closed).
            await asyncio.gather(self.children.stop(STOP_GRACE),
                                 self.dispatcher.finish(STOP_GRACE.total_seconds()))
            if socket_mode is not None:
                await socket_mode.close_async()  # type: ignore[no-untyped-call]
            await close_answers()  # the pooled connections to Slack's response_urls
            await self.close()

    async def check(self) -> dict[str, int]:
        """One pass for cron: poll every source, close every window, deliver what is due."""
        report = Report()
        for number in range(len(self.config.desk.sources)):
            report.merge(await self.poll(number, only_changed=False))
        now = self.clock()
        await self.db.write(outbox.recover_leases, now)
        await self.retire_escalations()
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
        await self.sources.close()
        await self.dispatcher.stop()
        self.db.close()
