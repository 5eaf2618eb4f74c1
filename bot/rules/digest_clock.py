"""When daily digests are due: pure functions of a zone, a local digest hour and `now`.

A digest belongs to a local date. It is due from that date's digest hour until local midnight,
so a bot that was down at 07:00 still sends it at 09:00, and never sends it the next day.
Wall-clock times come from `zoneinfo`, so 07:00 stays 07:00 local across DST changes; in a
spring-forward gap the hour falls after the gap, and in a repeated hour the first one counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo


def local_date(now: datetime, zone: str) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def digest_time(day: date, zone: str, hour: str) -> datetime:
    """The UTC instant of `hour` (HH:MM) on local date `day` in `zone`."""
    wall = time.fromisoformat(hour)
    return datetime.combine(day, wall, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def first_due(now: datetime, zone: str, hour: str) -> datetime:
    """A new or changed subscriber's first digest: today's hour if still ahead, else tomorrow's."""
    today = local_date(now, zone)
    at = digest_time(today, zone, hour)
    return at if at > now else digest_time(today + timedelta(days=1), zone, hour)


class Due(NamedTuple):
    day: date | None  # the local date whose digest goes out now; None when that date has passed
    next_at: datetime  # when to look again
    reason: str


def due(now: datetime, zone: str, hour: str, scheduled: datetime) -> Due:
    """Decide for a subscriber whose digest was scheduled at `scheduled` (<= now)."""
    today = local_date(now, zone)
    at = digest_time(today, zone, hour)
    tomorrow = digest_time(today + timedelta(days=1), zone, hour)
    if now >= at:
        late = "" if now - at < timedelta(minutes=5) else f", sent late at {now:%H:%M} UTC"
        return Due(today, tomorrow, f"daily digest for {today} ({hour} {zone}{late})")
    missed = local_date(scheduled, zone)
    return Due(None, at, f"the {missed} digest hour passed while alertbot was down; the "
                         f"{today} digest covers that time")
