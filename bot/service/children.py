"""Delivery from more than one process: `[delivery] processes = N` runs N−1 delivery children.

One event loop spends ~0.5 ms of CPU a Slack delivery (render, the call, claim and settle) and
shares it with ingest; a burst is faster when other processes deliver too. A child is
`alertbot deliver-child` (hidden), started by `alertbot run` with the same environment, so the
same configuration and database: a `Dispatcher` and its transports, nothing else (no HTTP, no
scheduler, no ingest, no lease recovery: the parent's tick returns a dead child's rows).

Claims stay one row, one sender: a claim is the outbox's lease with busy targets and pacing
read from the database, the same as between replicas (`bot/outbox/queue.py`); SQLite's one
writer is taken in turns (a claim takes the write lock first, others wait its busy_timeout).

Two pipes per child. The parent writes a byte to the child's stdin each time new rows are
committed (the child then claims at once; its one-second poll stays as the fallback); end of
file means the parent stopped or died, and the child stops claiming, lets what is in flight
settle, and exits. The child writes JSON lines to its stdout: `ready`, what its workers
counted (replayed into the parent's metrics, so `/metrics` counts every process's deliveries),
and its failing transports (shown by the parent's `/readyz`). A child that exits while the
parent runs is logged and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from bot.db import Database
from bot.delivery import Dispatcher
from bot.metrics import Metrics
from bot.readers.subscribers import secret_key
from bot.service.transports import build_transports
from bot.settings import Config

log = logging.getLogger(__package__)
COMMAND = [sys.executable, "-m", "bot", "deliver-child"]
READY_WAIT = 30.0  # how long `alertbot run` waits for its children before serving anyway
RESTART_FIRST, RESTART_LONGEST = 1.0, 30.0  # a child dying over and over is retried less often
RELAY_EVERY = 0.2  # seconds between a child's reports of what it counted
REPORT_LIMIT = 16 * 2**20  # the longest report line read (~100,000 deliveries' counts)
Failing = dict[str, tuple[datetime, str]]


# -- the parent's side -----------------------------------------------------------------------


@dataclass(eq=False)
class Child:
    number: int
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failing: Failing = field(default_factory=dict)
    down: str | None = None  # why it is not running, while it is started again


@dataclass
class Children:
    """The delivery children of one `alertbot run`: started, woken, watched, stopped."""

    count: int
    metrics: Metrics
    children: list[Child] = field(default_factory=list)
    _watchers: set[asyncio.Task[None]] = field(default_factory=set)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Start the children and wait (up to READY_WAIT) until each can deliver."""
        self.children = [Child(n + 2) for n in range(self.count)]  # the parent is process 1
        for child in self.children:
            await self._spawn(child)
            task = asyncio.create_task(self._watch(child))
            self._watchers.add(task)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_WAIT):  # not wait_for: see Dispatcher._sleep
                await asyncio.gather(*(child.ready.wait() for child in self.children))
        late = [child.number for child in self.children if not child.ready.is_set()]
        if late:
            log.warning("delivery processes %s not ready after %.0f s; serving anyway", late,
                        READY_WAIT)

    async def _spawn(self, child: Child) -> None:
        child.ready.clear()
        child.process = await asyncio.create_subprocess_exec(
            *COMMAND, str(child.number), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=REPORT_LIMIT,
        )

    def wake(self) -> None:
        """New rows are committed: every child claims now rather than at its next poll."""
        for child in self.children:
            stdin = None if child.process is None else child.process.stdin
            if stdin is not None and child.ready.is_set() and not stdin.is_closing():
                stdin.write(b"w")

    def degraded(self) -> dict[str, str]:
        """For /readyz: children down, and transports failing in a child."""
        found: dict[str, str] = {}
        for child in self.children:
            if child.down is not None:
                found[f"delivery process {child.number}"] = child.down
            for transport, (since, error) in child.failing.items():
                found.setdefault(transport, f"sends failing since {since:%H:%M:%S} UTC in "
                                            f"delivery process {child.number}: {error}")
        return found

    async def _watch(self, child: Child) -> None:
        """Read a child's reports until it exits; start it again unless we are stopping."""
        delay, loop = RESTART_FIRST, asyncio.get_running_loop()
        while True:
            process, started = child.process, loop.time()
            assert process is not None and process.stdout is not None
            async for line in process.stdout:
                self._report(child, line)
            code = await process.wait()
            child.failing = {}
            if self._stopped.is_set():
                return
            if loop.time() - started > RESTART_LONGEST:  # it ran a while: not a crash loop
                delay = RESTART_FIRST
            child.down = f"exited with {code}; starting it again"
            log.error("delivery process %s (pid %s) exited with %s; starting it again in "
                      "%.0f s", child.number, process.pid, code, delay)
            with contextlib.suppress(TimeoutError):  # a stop ends the wait
                async with asyncio.timeout(delay):
                    await self._stopped.wait()
            if self._stopped.is_set():
                return
            delay = min(RESTART_LONGEST, delay * 2)
            try:
                await self._spawn(child)
            except OSError as exc:  # e.g. out of processes: said, and tried again after `delay`
                log.error("delivery process %s could not be started: %s", child.number, exc)

    def _report(self, child: Child, line: bytes) -> None:
        try:
            report = json.loads(line)
        except ValueError:  # not ours (a library printing): not a report
            return
        if not isinstance(report, dict):
            return
        if report.get("ready"):
            child.down = None
            child.ready.set()
        for name, labels, method, value in report.get("counted", ()):
            replay(self.metrics, name, labels, method, value)
        if "failing" in report:
            child.failing = {transport: (datetime.fromisoformat(since), error)
                             for transport, (since, error) in report["failing"].items()}

    async def stop(self, grace: timedelta) -> None:
        """Close each child's stdin (it finishes what is in flight and exits); kill those
        still running after `grace` and a second more."""
        self._stopped.set()
        for child in self.children:
            if child.process is not None and child.process.stdin is not None:
                child.process.stdin.close()
        processes = [child.process for child in self.children if child.process is not None]
        try:
            async with asyncio.timeout(grace.total_seconds() + 1):
                await asyncio.gather(*(process.wait() for process in processes))
        except TimeoutError:
            for process in processes:
                if process.returncode is None:
                    log.warning("delivery process pid %s did not stop in time; killed",
                                process.pid)
                    process.kill()
        await asyncio.gather(*self._watchers, return_exceptions=True)


def replay(metrics: Metrics, name: str, labels: list[str], method: str, value: float) -> None:
    """Count in `metrics` what a child counted (`Relay`): only counters and histograms."""
    if method in ("inc", "observe") and hasattr(metrics, name):
        getattr(getattr(metrics, name).labels(*labels), method)(value)


# -- the child's side ------------------------------------------------------------------------


class Relay:
    """Stands in for `Metrics` in a child: what the workers count (`metrics.<name>.labels(…)
    .inc()` or `.observe(v)`) is kept, and sent to the parent with the next report."""

    def __init__(self) -> None:
        self.counted: list[tuple[str, tuple[str, ...], str, float]] = []

    def __getattr__(self, name: str) -> _Metric:
        return _Metric(self, name, ())


@dataclass
class _Metric:
    relay: Relay
    name: str
    values: tuple[str, ...]

    def labels(self, *values: str) -> _Metric:
        return _Metric(self.relay, self.name, values)

    def inc(self, amount: float = 1) -> None:
        self.relay.counted.append((self.name, self.values, "inc", amount))

    def observe(self, value: float) -> None:
        self.relay.counted.append((self.name, self.values, "observe", value))


async def serve_child(config: Config, number: int, grace: timedelta) -> None:
    """Delivery process `number`: deliver until stdin ends or SIGTERM/SIGINT, then settle."""
    relay = Relay()
    db = Database(config.settings.database_url.get_secret_value())
    # The workers touch only counters and histograms, which the relay forwards.
    dispatcher = Dispatcher(db, config, build_transports(config), secret_key(config.settings),
                            metrics=cast(Metrics, relay))
    loop = asyncio.get_running_loop()
    wakes = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(wakes), sys.stdin)
    stop = asyncio.Event()
    for stopping in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stopping, stop.set)
    workers = asyncio.create_task(dispatcher.run())
    reports = asyncio.create_task(_report_every(relay, dispatcher))
    _send({"ready": True})
    log.info("delivery process %s (pid %s) delivering", number, os.getpid())
    listening = asyncio.create_task(_listen(wakes, dispatcher))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([listening, stopped], return_when=asyncio.FIRST_COMPLETED)
    for task in (listening, stopped, workers):  # claim nothing more; let in flight settle
        task.cancel()
    await asyncio.gather(listening, stopped, workers, return_exceptions=True)
    try:
        await dispatcher.finish(grace.total_seconds())
    finally:
        reports.cancel()
        await asyncio.gather(reports, return_exceptions=True)
        _flush(relay, dispatcher, {})
        await dispatcher.stop()
        db.close()


async def _listen(wakes: asyncio.StreamReader, dispatcher: Dispatcher) -> None:
    while await wakes.read(4096):  # b"" is end of file: the parent is gone
        dispatcher.wake()


async def _report_every(relay: Relay, dispatcher: Dispatcher) -> None:
    sent: Failing = {}
    while True:
        await asyncio.sleep(RELAY_EVERY)
        sent = _flush(relay, dispatcher, sent)


def _flush(relay: Relay, dispatcher: Dispatcher, sent: Failing) -> Failing:
    """Send what was counted since the last report, and the failing transports if changed."""
    report: dict[str, Any] = {}
    if relay.counted:
        report["counted"], relay.counted = relay.counted, []
    failing = dict(dispatcher.failing)
    if failing != sent:
        report["failing"] = {transport: [since.isoformat(), error]
                             for transport, (since, error) in failing.items()}
    if report:
        _send(report)
    return failing


def _send(report: dict[str, Any]) -> None:
    # A short blocking write: the parent reads every line as it comes. If the parent is gone
    # (stdout broken), what it would have counted goes with it.
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.buffer.write(json.dumps(report).encode() + b"\n")
        sys.stdout.buffer.flush()
