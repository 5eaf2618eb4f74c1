"""When an action item nobody has claimed is escalated, and whether a pending escalation still
applies: pure decisions, each with its reason, time passed in.

A route with `escalate_after` escalates an item at or above `escalate_impact` that is still open
that long after its alert was planned, `escalate_repeat` rounds `escalate_after` apart. A snooze
moves the rounds to its end; quiet hours hold a round to their end unless the impact breaks
through; a claim, done or dismiss cancels what is pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.rules.batching import in_quiet_hours
from bot.rules.claims import Item, State


@dataclass(frozen=True)
class Policy:
    """A route's escalation settings."""

    after: timedelta
    impact: float
    to: tuple[str, ...]  # user (U…, W…), user-group (S…) or channel (C…, G…) ids
    repeat: int = 1


@dataclass(frozen=True)
class Quiet:
    """A route's quiet hours ("22:00-07:00" in `zone`; None: none) and what breaks through."""

    hours: str | None = None
    zone: str = "UTC"
    break_through: float = 10


@dataclass(frozen=True)
class Round:
    number: int  # 1 … repeat
    due: datetime
    reason: str  # the operator's plain form, kept on the outbox row


@dataclass(frozen=True)
class Plan:
    """The rounds to queue (none, with why not)."""

    rounds: tuple[Round, ...]
    reason: str


@dataclass(frozen=True)
class Verdict:
    """Whether a pending round goes now: send, cancel (`until` None) or wait until `until`."""

    send: bool
    reason: str
    until: datetime | None = None


def plan(policy: Policy | None, impact: float, alerted_at: datetime, quiet: Quiet,
         item: Item | None = None) -> Plan:
    """The escalation rounds of a story alerted at `alerted_at` on a route with `policy`."""
    if policy is None:
        return Plan((), "the route does not escalate")
    if impact < policy.impact:
        return Plan((), f"impact {impact:g} < {policy.impact:g}: not escalated")
    item = Item() if item is None else item  # never acted on: open, nobody
    if item.state is not State.OPEN:
        return Plan((), f"already {item.state.value} by {item.by}")
    if item.snoozed_until is not None and item.snoozed_until > alerted_at:
        return Plan(rounds(policy, impact, item.snoozed_until, quiet, first_at_start=True),
                    "snoozed")
    return Plan(rounds(policy, impact, alerted_at, quiet), "unclaimed")


def rounds(policy: Policy, impact: float, start: datetime, quiet: Quiet,
           first_at_start: bool = False, numbers: Sequence[int] | None = None
           ) -> tuple[Round, ...]:
    """Rounds `escalate_after` apart from `start` (the first at `start` itself after a snooze:
    the item has waited long enough already), each held by quiet hours."""
    numbers = numbers if numbers is not None else range(1, policy.repeat + 1)
    found = []
    for n, number in enumerate(numbers):
        due = start + policy.after * (n if first_at_start else n + 1)
        why = (f"open {policy.after} after its alert" if not first_at_start
               else "open at the end of its snooze")
        held, said = hold(due, impact, quiet)
        found.append(Round(number, held, f"{why}{said}"))
    return tuple(found)


def moved(policy: Policy, impact: float, until: datetime, quiet: Quiet,
          numbers: Sequence[int]) -> tuple[Round, ...]:
    """A snooze to `until`: the pending rounds (`numbers`) start again at its end."""
    return rounds(policy, impact, until, quiet, first_at_start=True, numbers=sorted(numbers))


def hold(due: datetime, impact: float, quiet: Quiet) -> tuple[datetime, str]:
    """`due`, or the end of the quiet hours it falls in; and what to add to the reason."""
    if not in_quiet_hours(due, quiet.hours, quiet.zone):
        return due, ""
    if impact >= quiet.break_through:
        return due, f"; impact ≥ {quiet.break_through:g} breaks through quiet hours"
    assert quiet.hours is not None  # in_quiet_hours is False without them
    ends = quiet_end(due, quiet.hours, quiet.zone)
    return ends, f"; held by quiet hours until {ends:%H:%M} UTC"


def quiet_end(moment: datetime, hours: str, zone: str) -> datetime:
    """The next end of quiet hours ("22:00-07:00", wall clock in `zone`) after `moment`."""
    end = time.fromisoformat(hours.split("-")[1])
    local = moment.astimezone(ZoneInfo(zone))
    ends = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if ends <= local:
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=local.tzinfo)
    return ends.astimezone(moment.tzinfo)


def still_applies(item: Item, due: datetime, impact: float | None = None,
                  at_least: float | None = None) -> Verdict:
    """At send time: a round whose item was claimed, done or dismissed since it was planned,
    or whose story was re-scored below the route's `escalate_impact` (`impact` now, against
    `at_least`), is cancelled; one whose item is snoozed past its due time waits for the
    snooze's end."""
    if impact is not None and at_least is not None and impact < at_least:
        return Verdict(False, f"re-scored to impact {impact:g} < {at_least:g}")
    if item.state is not State.OPEN:
        return Verdict(False, f"{item.state.value} by {item.by}")
    if item.snoozed_until is not None and item.snoozed_until > due:
        return Verdict(False, f"snoozed until {item.snoozed_until:%H:%M} UTC",
                       item.snoozed_until)
    return Verdict(True, "still open and unclaimed")
