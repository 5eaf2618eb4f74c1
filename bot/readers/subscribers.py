"""Email subscribers: storage, and the HMAC-signed unsubscribe tokens that name one address."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Connection, bindparam, delete, select, update

from bot.db.schema import SUBSCRIBERS
from bot.rules.digest_clock import first_due, local_date
from bot.settings import Settings

Mode = Literal["instant", "daily", "both"]
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_HOUR = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


DAILY = ("daily", "both")
INSTANT = ("instant", "both")


@dataclass(frozen=True)
class Subscriber:
    email: str
    mode: Mode
    timezone: str
    topics: tuple[str, ...]
    digest_hour: str
    next_digest_at: datetime | None = None  # as stored; None for instant-only subscribers
    digest_since: datetime | None = None  # when the last digest was planned
    digest_seq: int | None = None  # the highest action-item number it covered
    min_impact: float | None = None  # on top of the desk's rule; None: the desk's alone
    paused_until: date | None = None  # no email before this local date; None: not paused

    def paused(self, now: datetime) -> bool:
        """True while the reader's local date is before `paused_until`."""
        return self.paused_until is not None and local_date(now, self.timezone) < self.paused_until


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


# What a reader sets for themselves on the preference page, which the operator may also write.
OWN = ("min_impact", "paused_until")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def with_own(subscriber: Subscriber, min_impact: str | None, paused_until: str | None
             ) -> tuple[Subscriber, frozenset[str]]:
    """`subscriber` with the reader's own settings as an operator writes them (an option, a
    CSV cell), and the names of those left unwritten, which an update keeps as stored.

    Empty or None: not written. `none`: cleared (the desk's rule alone; not paused). Else a
    minimum impact from 1 to 10, and a date as YYYY-MM-DD (no email before that local date).
    ValueError names the bad one.
    """
    impact_text, pause_text = (min_impact or "").strip(), (paused_until or "").strip()
    keep = {name for name, text in zip(OWN, (impact_text, pause_text), strict=True) if not text}
    impact = None if impact_text.lower() in ("", "none") else _impact(impact_text)
    paused = None if pause_text.lower() in ("", "none") else _date(pause_text)
    return replace(subscriber, min_impact=impact, paused_until=paused), frozenset(keep)


def _impact(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0  # refused below, by the same words
    if not 1 <= value <= 10:  # NaN too
        raise ValueError(f"min_impact: {text!r} is not an impact from 1 to 10 (or none)")
    return value


def _date(text: str) -> date:
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"paused_until: {text!r} is not a date as YYYY-MM-DD (or none)")


def add(db: Connection, subscriber: Subscriber, now: datetime,
        keep: Collection[str] = ()) -> bool:
    """Add a subscriber, or update the one with the same address; True when new.

    An update keeps where the last digest's window ended, so changing the hour or zone neither
    repeats nor skips stories; the next digest time is worked out again. It also keeps the
    reader's own settings named in `keep` (`OWN`) as stored: an operator who did not write them
    does not undo what the reader set on the preference page.
    """
    values = {
        "mode": subscriber.mode, "timezone": subscriber.timezone,
        "topics": list(subscriber.topics), "digest_hour": subscriber.digest_hour,
        "min_impact": subscriber.min_impact, "paused_until": subscriber.paused_until,
        "next_digest_at": (first_due(now, subscriber.timezone, subscriber.digest_hour)
                           if subscriber.mode in DAILY else None),
    }
    updated = db.execute(update(SUBSCRIBERS).where(SUBSCRIBERS.c.email == subscriber.email)
                         .values(**{k: v for k, v in values.items() if k not in keep}))
    if updated.rowcount:
        return False
    db.execute(SUBSCRIBERS.insert().values(email=subscriber.email, created_at=now, **values))
    return True


def remove(db: Connection, email: str) -> bool:
    result = db.execute(delete(SUBSCRIBERS).where(SUBSCRIBERS.c.email == email.lower()))
    return bool(result.rowcount)


def listing(db: Connection, modes: Sequence[str] = ("instant", "daily", "both"),
            now: datetime | None = None) -> list[Subscriber]:
    """Subscribers in `modes`, by address (ingest asks for instant ones on every batch).

    With `now`, only those not paused at that moment: a paused reader is no target at all.
    """
    found = [from_row(r) for r in db.execute(_BY_MODES, {"modes": list(modes)})]
    return found if now is None else [s for s in found if not s.paused(now)]


# Built once: ingest runs it for every chunk (a push of one story included).
_BY_MODES = (select(SUBSCRIBERS).where(SUBSCRIBERS.c.mode.in_(bindparam("modes", expanding=True)))
             .order_by(SUBSCRIBERS.c.email))


def from_row(r: Any) -> Subscriber:
    """A `subscribers` row as a Subscriber (the daily planner reads rows itself)."""
    return Subscriber(r.email, r.mode, r.timezone, tuple(r.topics), r.digest_hour,
                      r.next_digest_at, r.digest_since, r.digest_seq, r.min_impact,
                      r.paused_until)


def _rows(db: Connection, condition: ColumnElement[bool]) -> list[Subscriber]:
    rows = db.execute(select(SUBSCRIBERS).where(condition).order_by(SUBSCRIBERS.c.email))
    return [from_row(r) for r in rows]


def find(db: Connection, email: str) -> Subscriber | None:
    found = _rows(db, SUBSCRIBERS.c.email == email.strip().lower())
    return found[0] if found else None


CSV_COLUMNS = ("email", "mode", "tz", "topics", "digest_hour", *OWN)


class Imported(NamedTuple):
    """A good row of an import: the subscriber, and the reader's own settings it left empty
    (kept as stored, `add`'s `keep`)."""

    subscriber: Subscriber
    keep: frozenset[str]


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


def read_csv(text: str, default_hour: str) -> tuple[list[Imported], list[BadRow]]:
    """Parse an import file (header email,mode,tz,topics,digest_hour,min_impact,paused_until);
    bad rows by line.

    Only `email` is required; an empty mode, tz or digest_hour takes the `subscribers add`
    default, and an empty min_impact or paused_until (or no such column) keeps what the reader
    set (`with_own`; `none` clears it). Topics are separated by `;` or `,` (quote the field for
    commas). A later row for the same address wins, as a second `add` would.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "email" not in header:
        return [], [BadRow(1, f"the header must name the columns {','.join(CSV_COLUMNS)}")]
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown:
        return [], [BadRow(1, f"unknown column(s) {', '.join(unknown)}; "
                              f"expected {','.join(CSV_COLUMNS)}")]
    reader.fieldnames = header
    good: dict[str, Imported] = {}
    bad: list[BadRow] = []
    for row in reader:
        if None in row:  # more cells than the header names
            bad.append(BadRow(reader.line_num, f"{len(header) + len(row[None])} cells for "
                                               f"{len(header)} columns"))
            continue
        cells = {key: (value or "").strip() for key, value in row.items()}
        if not any(cells.values()):
            continue  # a blank line
        try:
            subscriber = validate(cells["email"], cells.get("mode") or "daily",
                                  cells.get("tz") or "UTC",
                                  re.split(r"[;,]", cells.get("topics") or ""),
                                  cells.get("digest_hour") or default_hour)
            imported = Imported(*with_own(subscriber, cells.get("min_impact"),
                                          cells.get("paused_until")))
        except ValueError as exc:
            bad.append(BadRow(reader.line_num, str(exc)))
            continue
        good[subscriber.email] = imported
    return list(good.values()), bad


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


# What a token is for, signed into it: an unsubscribe token opens no preference page, and a
# preferences token unsubscribes no one.
Purpose = Literal["unsubscribe", "preferences"]


def _sign(key: bytes, address: str, purpose: Purpose = "unsubscribe") -> str:
    mac = hmac.new(key, f"{purpose}:".encode() + address.lower().encode(), hashlib.sha256)
    return _b64(mac.digest()[:20])


def unsubscribe_token(key: bytes, address: str, purpose: Purpose = "unsubscribe") -> str:
    """A token that names one address and cannot be made for another without the key."""
    return f"{_b64(address.lower().encode())}.{_sign(key, address, purpose)}"


def preferences_token(key: bytes, address: str) -> str:
    """The token of a reader's "Manage preferences" link."""
    return unsubscribe_token(key, address, "preferences")


def verify_token(key: bytes, token: str, purpose: Purpose = "unsubscribe") -> str | None:
    """Return the address a token was made for, or None if it is tampered with, foreign or
    made for another purpose."""
    encoded, _, signature = token.partition(".")
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # As bytes: compare_digest refuses str with non-ASCII characters, which a URL can carry.
    expected = _sign(key, address, purpose).encode()
    return address if hmac.compare_digest(expected, signature.encode()) else None
