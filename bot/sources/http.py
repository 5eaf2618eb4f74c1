"""The `http` source (docs/stories.md, Sources): a URL returning stories, polled with a
`since` cursor and ETag.

Each poll sends `?since=<latest scored_at seen>` and `If-None-Match: <last ETag>`; a 304 costs
nothing. A timeout, a refused connection, an error status or an unusable body makes that source
wait longer before its next try (doubling, capped); other sources and deliveries go on, since
each source polls in its own scheduler job with its own timeout. Re-reading a story is harmless:
the archive ignores versions it already has, so the cursor may overlap.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp

from bot.stories.parsing import Batch, UnusableInput, parse_batch

log = logging.getLogger(__name__)
MAX_BYTES = 20 * 1024 * 1024  # a feed bigger than this is refused rather than held in memory
PARSE_INLINE_BYTES = 64 * 1024
BACKOFF_CAP = timedelta(minutes=15)


def retry_delay(failures: int, interval: timedelta, rng: random.Random) -> timedelta:
    """After `failures` failed polls in a row: the poll interval doubled each time, capped,
    with jitter so that replicas do not retry in step."""
    delay = min(BACKOFF_CAP.total_seconds(), interval.total_seconds() * 2 ** (failures - 1))
    return timedelta(seconds=delay * rng.uniform(0.8, 1.0))


class SourceError(Exception):
    """A poll that failed; the message is one sentence for the log."""


@dataclass(frozen=True)
class Fetched:
    batch: Batch
    etag: str | None


@dataclass
class HttpSource:
    url: str
    interval: timedelta
    timeout: timedelta
    etag: str | None = None
    cursor: datetime | None = None  # the latest scored_at read so far
    failures: int = 0
    resume_at: datetime | None = None  # while backing off: no poll before this
    last_error: str | None = None  # while failing: why, for /readyz
    rng: random.Random = field(default_factory=random.Random)

    def waiting(self, now: datetime) -> bool:
        return self.resume_at is not None and now < self.resume_at

    async def fetch(self, session: aiohttp.ClientSession) -> Fetched | None:
        """GET the feed: what it holds, or None when nothing changed (304). Raises SourceError.

        The cursor and ETag move only in `succeeded`, after the stories are stored: a poll whose
        stories could not be stored is fetched again in full.
        """
        headers = {"Accept": "application/json"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        params = {"since": self.cursor.isoformat()} if self.cursor else {}
        try:
            async with session.get(
                self.url, params=params, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout.total_seconds()),
            ) as response:
                if response.status == 304:
                    return None
                if response.status != 200:
                    raise SourceError(f"answered HTTP {response.status} {response.reason}")
                body = await response.content.read(MAX_BYTES + 1)
                if len(body) > MAX_BYTES:
                    raise SourceError(f"sent more than {MAX_BYTES // 2**20} MB")
                etag = response.headers.get("ETag")
        except TimeoutError:
            raise SourceError(f"did not answer within {self.timeout.total_seconds():g} s"
                              ) from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"unreachable ({type(exc).__name__}: {exc})") from None
        try:
            # A big feed parses off the event loop, so HTTP answers and deliveries carry on.
            batch = (await asyncio.to_thread(parse_batch, body) if len(body) > PARSE_INLINE_BYTES
                     else parse_batch(body))
        except UnusableInput as exc:
            raise SourceError(str(exc)) from None
        return Fetched(batch, etag)

    def succeeded(self, fetched: Fetched | None) -> None:
        self.failures, self.resume_at, self.last_error = 0, None, None
        if fetched is None:
            return
        self.etag = fetched.etag
        if fetched.batch.stories:
            latest = max(story.scored_at for story in fetched.batch.stories)
            self.cursor = max(latest, self.cursor) if self.cursor else latest

    def failed(self, now: datetime, error: str) -> timedelta:
        """Count a failure and return how long the source now waits."""
        self.failures += 1
        self.last_error = error
        delay = retry_delay(self.failures, self.interval, self.rng)
        self.resume_at = now + delay
        return delay
