"""Per-client limits on the public pages (unsubscribe, preferences, sign-up), kept in memory.

Each replica counts alone: the limits only keep one client from hammering the database
through token guesses or form posts, or the sign-up form from flooding inboxes, so an
approximate count per replica is enough.

Behind a proxy or load balancer every request comes from the proxy's address; the client is
then read from `X-Forwarded-For`, but only when the request came from one of the proxies the
operator named (ALERTBOT_TRUSTED_PROXIES), since anyone can send that header.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request

PER_MINUTE = 30  # a reader clicking about never gets near it; a script soon does
HOUR = 3600.0
Network = IPv4Network | IPv6Network


def _trusted(host: str, proxies: Sequence[Network]) -> bool:
    try:
        address = ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in proxies)


def client_address(request: Request, proxies: Sequence[Network] = ()) -> str:
    """The client a limit counts: the peer, or, when the peer is a trusted proxy, the last
    address in `X-Forwarded-For` that is not one of the trusted proxies (each proxy appends
    the address it saw, so the ones before it may be written by the client itself)."""
    peer = request.client.host if request.client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for line in request.headers.getlist("x-forwarded-for")
            for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:64]  # a key in memory: a long made-up value is cut
    return hops[0][:64] if hops else peer  # every hop is one of ours: the first


class ClientLimit:
    """At most `count` requests per client in any `window` seconds."""

    def __init__(self, per_minute: int = PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic,
                 proxies: Sequence[Network] = (), window: float = 60) -> None:
        self.per_minute = per_minute  # the count allowed per window (a minute unless told)
        self.clock = clock
        self.proxies = tuple(proxies)
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def allow(self, request: Request) -> bool:
        """Count this request against its client; False once it is over the limit."""
        client = client_address(request, self.proxies)
        now = self.clock()
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(self._seen) > 10_000:  # forget idle clients, so the table cannot grow unbounded
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
            self._seen[client] = seen
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True
