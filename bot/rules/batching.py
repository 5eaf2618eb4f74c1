"""Latency first, then batching (README, Delivery guarantees): a pure decision per target.

When a target has sent nothing within its batch window, pending items go out at once (the leading
edge); items that arrive while the window is open wait for it to close (the trailing batch).
One rule covers both: send when `now` is at or past the end of the last message's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Plan:
    send: bool
    reason: str
    due_at: datetime | None = None  # when a held batch becomes due


def plan(
    pending: int,
    last_message_at: datetime | None,
    window: timedelta,
    now: datetime,
    close_windows: bool = False,
) -> Plan:
    """Decide whether `pending` items for one target are sent now, and why."""
    if pending == 0:
        return Plan(False, "nothing pending")
    if last_message_at is None:
        return Plan(True, "first message to this target")
    closes_at = last_message_at + window
    if now >= closes_at:
        return Plan(True, f"nothing sent in the last {window}")
    if close_windows:
        return Plan(True, "window closed at the end of the pass")
    return Plan(False, f"held until the batch window closes at {closes_at:%H:%M:%S} UTC", closes_at)


def in_quiet_hours(now: datetime, quiet_hours: str | None, zone: str) -> bool:
    """Whether `now` falls in a route's quiet hours ("22:00-07:00", in its IANA zone)."""
    if not quiet_hours:
        return False
    start, end = (time.fromisoformat(part) for part in quiet_hours.split("-"))
    local = now.astimezone(ZoneInfo(zone)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the range wraps past midnight
