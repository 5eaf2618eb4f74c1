"""Self sign-up: who may sign up, and the signed, expiring link that confirms an address.

An address is subscribed only when its owner opens the link emailed to it and confirms
(double opt-in). The link's token names the address and the second it stops being valid,
signed with the service's key for the purpose "signup", so no unsubscribe or preferences
token confirms anything and a confirmation token opens nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

CONFIRM_LIFETIME = timedelta(hours=48)  # a weekend away from the inbox; short for a leak


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, address: str, expires: int) -> str:
    signed = f"signup:{address.lower()}:{expires}".encode()
    return _b64(hmac.new(key, signed, hashlib.sha256).digest()[:20])


def allowed(address: str, domains: Sequence[str]) -> bool:
    """True when the address is in one of the listed mail domains (exactly, any case)."""
    return address.rpartition("@")[2].lower() in domains


def expiry(now: datetime) -> int:
    """When a confirmation link made now stops working, as a Unix second."""
    return int((now + CONFIRM_LIFETIME).timestamp())


def confirm_token(key: bytes, address: str, expires: int) -> str:
    """The token of the link in a confirmation email: address, expiry, signature."""
    return f"{_b64(address.lower().encode())}.{expires}.{_mac(key, address, expires)}"


def verify_confirm_token(key: bytes, token: str, now: datetime) -> str | None:
    """The address the token confirms, or None when it is tampered with, foreign, made for
    another purpose, or expired."""
    encoded, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    if not expires.isdigit() or len(expires) > 12:
        return None
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # As bytes: compare_digest refuses str with non-ASCII characters, which a URL can carry.
    good = hmac.compare_digest(_mac(key, address, int(expires)).encode(), signature.encode())
    return address if good and now.timestamp() < int(expires) else None
