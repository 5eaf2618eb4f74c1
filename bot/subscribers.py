"""Email subscribers: storage, and the HMAC-signed unsubscribe tokens that name one address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, select

from bot.db.schema import SUBSCRIBERS
from bot.settings import Settings

Mode = Literal["instant", "daily", "both"]
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_HOUR = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Subscriber:
    email: str
    mode: Mode
    timezone: str
    topics: tuple[str, ...]
    digest_hour: str


def validate(email: str, mode: str, timezone: str, topics: Sequence[str], digest_hour: str
             ) -> Subscriber:
    """Check a subscriber's fields; raise ValueError naming the bad one."""
    address = email.strip()
    if not _ADDRESS.match(address) or len(address) > 320:
        raise ValueError(f"email: {email!r} is not an email address")
    if mode not in ("instant", "daily", "both"):
        raise ValueError(f"mode: {mode!r} is not instant, daily or both")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"tz: {timezone!r} is not an IANA time zone") from None
    if not _HOUR.match(digest_hour):
        raise ValueError(f"digest_hour: {digest_hour!r} is not HH:MM")
    clean = tuple(sorted({t.strip().lower() for t in topics if t.strip()}))
    return Subscriber(address.lower(), mode, timezone, clean, digest_hour)  # type: ignore[arg-type]


def add(db: Connection, subscriber: Subscriber, now: datetime) -> None:
    """Add a subscriber, or update the one with the same address."""
    remove(db, subscriber.email)
    db.execute(SUBSCRIBERS.insert().values(
        email=subscriber.email, mode=subscriber.mode, timezone=subscriber.timezone,
        topics=list(subscriber.topics), digest_hour=subscriber.digest_hour, created_at=now,
    ))


def remove(db: Connection, email: str) -> bool:
    result = db.execute(delete(SUBSCRIBERS).where(SUBSCRIBERS.c.email == email.lower()))
    return bool(result.rowcount)


INSTANT = ("instant", "both")


def listing(db: Connection, modes: Sequence[str] = ("instant", "daily", "both")
            ) -> list[Subscriber]:
    """Subscribers in `modes`, by address (ingest asks for instant ones on every batch)."""
    rows = db.execute(select(SUBSCRIBERS).where(SUBSCRIBERS.c.mode.in_(list(modes)))
                      .order_by(SUBSCRIBERS.c.email))
    return [Subscriber(r.email, r.mode, r.timezone, tuple(r.topics), r.digest_hour) for r in rows]


def secret_key(settings: Settings, var_dir: Path = Path("var")) -> bytes:
    """The HMAC key: ALERTBOT_SECRET_KEY, else one generated once and kept in var/."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(key: bytes, address: str) -> str:
    mac = hmac.new(key, b"unsubscribe:" + address.lower().encode(), hashlib.sha256)
    return _b64(mac.digest()[:20])


def unsubscribe_token(key: bytes, address: str) -> str:
    """A token that names one address and cannot be made for another without the key."""
    return f"{_b64(address.lower().encode())}.{_sign(key, address)}"


def verify_token(key: bytes, token: str) -> str | None:
    """Return the address a token was made for, or None if it is tampered with or foreign."""
    encoded, _, signature = token.partition(".")
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return address if hmac.compare_digest(_sign(key, address), signature) else None
