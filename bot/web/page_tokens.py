"""The token a public page's form carries, bound to the page: an HMAC of what the page is for,
whom it is about and the second it was issued. A form posted from another site (which cannot
read the page) or one older than FORM_LIFETIME changes nothing. The sign-up pages and the
preference page share it, each with purposes of its own, so no page's token passes another's.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

FORM_LIFETIME = timedelta(hours=2)  # long enough to read and think, short for a leaked page
CLOCK_SKEW = 60  # seconds a token may seem to come from the future (replicas' clocks differ)


def page_token(key: bytes, purpose: str, subject: str, issued: int) -> str:
    """The token of a page made for `purpose` about `subject` at Unix second `issued`."""
    mac = hmac.new(key, f"{purpose}:{subject}:{issued}".encode(), hashlib.sha256)
    return f"{issued}.{mac.hexdigest()[:40]}"


def page_token_ok(key: bytes, purpose: str, subject: str, given: str, now: datetime) -> bool:
    """True when `given` is this page's token and still fresh at `now`."""
    issued, _, _ = given.partition(".")
    if not issued.isdigit() or len(issued) > 12:  # no giant number to parse: not a second
        return False
    age = now.timestamp() - int(issued)
    fresh = -CLOCK_SKEW <= age <= FORM_LIFETIME.total_seconds()
    expected = page_token(key, purpose, subject, int(issued))
    return fresh and hmac.compare_digest(expected.encode(), given.encode())
