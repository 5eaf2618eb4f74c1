"""A per-client limit on the public pages (unsubscribe, preferences), kept in memory.

Each replica counts alone: the limit only keeps one client from hammering the database
through token guesses or form posts, so an approximate count per replica is enough.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from starlette.requests import Request

PER_MINUTE = 30  # a reader clicking about never gets near it; a script soon does


class ClientLimit:
    def __init__(self, per_minute: int = PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, request: Request) -> bool:
        """Count this request against its client; False once it is over the limit."""
        client = request.client.host if request.client else "unknown"
        now = self.clock()
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] <= now - 60:
            seen.popleft()
        if len(self._seen) > 10_000:  # forget idle clients, so the table cannot grow unbounded
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - 60}
            self._seen[client] = seen
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True
