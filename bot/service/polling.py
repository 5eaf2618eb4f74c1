"""Reading the desk's sources: files skipped while unchanged, http sources with their cursor.

A failing http source backs off on its own and shows as degraded on /readyz.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import aiohttp

from bot.delivery import Clock
from bot.pipeline import Pipeline, Report
from bot.settings import Config
from bot.sources import files
from bot.sources.http import HttpSource, SourceError

log = logging.getLogger(__package__)  # "bot.service", as the log lines have always said


class Sources:
    """The sources of `config`, by their number in `[[sources]]`."""

    def __init__(self, config: Config, pipeline: Pipeline, clock: Clock) -> None:
        self.config = config
        self.pipeline = pipeline
        self.clock = clock
        self.seen: dict[Path, tuple[float, int]] = {}  # a file's (mtime, size) when last read
        self.feeds = {
            number: HttpSource(source.url, source.poll_interval, source.timeout)
            for number, source in enumerate(config.desk.sources)
            if source.kind == "http" and source.url
        }
        self._session: aiohttp.ClientSession | None = None

    async def poll(self, number: int, only_changed: bool) -> Report:
        """Read source `number` and ingest what it holds (`only_changed`: skip unchanged files)."""
        source = self.config.desk.sources[number]
        if source.kind == "http":
            return await self._poll_http(self.feeds[number])
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
            if only_changed and self.seen.get(file) == signature:
                continue
            report.merge(await self._read(file))
            self.seen[file] = signature
        return report

    async def _read(self, file: Path) -> Report:
        """Ingest every batch `file` holds (a compressed archive may hold several)."""
        report = Report()
        started = time.perf_counter()  # parsing included
        # Reading and parsing run off the event loop: HTTP and deliveries carry on. Parsing
        # goes a chunk at a time, each stored before the next is parsed (Pipeline.ingest).
        for path, batch in await asyncio.to_thread(files.open_all, file):
            if isinstance(batch, str):
                log.error("file source: %s", batch)
                continue
            done = await self.pipeline.ingest(batch, f"file:{path}", self.clock())
            elapsed = time.perf_counter() - started
            log.info("read %s: %d stored, %d unchanged, %d rejected in %.2f s (%.0f/s)",
                     path, len(done.accepted), len(done.unchanged), len(done.rejected),
                     elapsed, batch.read / max(elapsed, 1e-9))
            report.merge(done)
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

    def degraded(self) -> dict[str, str]:
        """The http sources failing now, and why (for /readyz)."""
        return {f"source {feed.url}": f"{feed.last_error} ({feed.failures} in a row)"
                for feed in self.feeds.values() if feed.last_error}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
