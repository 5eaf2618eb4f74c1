"""Who may do what to an action item, and what its state becomes: a pure decision.

One state per story, desk-wide: open → claimed → done; any state → dismissed; done or dismissed
→ open again (re-open); snooze puts an open or claimed item aside until a time. The caller reads
the clock once and passes `now`; the outcome carries its reason as data, so the door can say why
a press was refused and the audit row can record it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class State(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    DISMISSED = "dismissed"


class Verb(StrEnum):
    CLAIM = "claim"
    DONE = "done"
    SNOOZE = "snooze"
    DISMISS = "dismiss"
    REOPEN = "reopen"


class Reason(StrEnum):
    """Why the desk judged a story not relevant: the scorers read these."""

    WRONG_IMPACT = "wrong_impact"
    NOT_OUR_BEAT = "not_our_beat"
    DUPLICATE = "duplicate"
    OTHER = "other"


@dataclass(frozen=True)
class Item:
    """An action item's state as stored; a story never acted on is `Item()` (open, nobody)."""

    state: State = State.OPEN
    by: str | None = None  # who claimed, finished or dismissed it
    at: datetime | None = None
    note: str | None = None
    reason: Reason | None = None
    snoozed_until: datetime | None = None
    by_name: str | None = None  # `by`'s name as Slack sent it with the press (email says it)


@dataclass(frozen=True)
class Request:
    """One press: who, what, and what it carries (a note, a dismissal reason, a snooze end)."""

    verb: Verb
    user: str
    groups: frozenset[str] = frozenset()  # the user-groups the user is in, for `allowed`
    note: str | None = None
    reason: Reason | None = None
    until: datetime | None = None
    name: str | None = None  # the presser's name as Slack sent it (user.name / user.username)


@dataclass(frozen=True)
class Outcome:
    """`applied` with the new item, or refused with a reason code (and who holds it)."""

    applied: bool
    item: Item
    code: str  # "claimed", "done", … or why not: "already_claimed", "not_allowed", …
    holder: str | None = None


def _refuse(item: Item, code: str, holder: str | None = None) -> Outcome:
    return Outcome(False, item, code, holder)


def may_act(request: Request, allowed: Collection[str] | None) -> bool:
    """None: anyone who sees the message; a list: those users or members of those groups."""
    if allowed is None:
        return True
    return request.user in allowed or bool(request.groups & set(allowed))


def decide(item: Item, request: Request, now: datetime,
           allowed: Collection[str] | None = None) -> Outcome:
    """May `request.user` do `request.verb` to `item` at `now`, and what is the item then."""
    if not may_act(request, allowed):
        return _refuse(item, "not_allowed")
    verb, user = request.verb, request.user
    if verb is Verb.CLAIM:
        return _claim(item, request, now)
    if verb is Verb.DONE:
        if item.state in (State.DONE, State.DISMISSED):
            return _refuse(item, f"already_{item.state.value}", item.by)
        return Outcome(True, Item(State.DONE, user, now, request.note, by_name=request.name),
                       "done")
    if verb is Verb.DISMISS:
        if item.state is State.DISMISSED:
            return _refuse(item, "already_dismissed", item.by)
        reason = request.reason or Reason.OTHER
        return Outcome(True, Item(State.DISMISSED, user, now, request.note, reason,
                                  by_name=request.name), "dismissed")
    if verb is Verb.SNOOZE:
        return _snooze(item, request, now)
    if item.state in (State.OPEN, State.CLAIMED) and item.snoozed_until is None:
        return _refuse(item, "already_open")
    return Outcome(True, Item(), "reopened")


def _claim(item: Item, request: Request, now: datetime) -> Outcome:
    if item.state is State.CLAIMED and item.by == request.user:
        return _refuse(item, "already_yours", item.by)
    if item.state is not State.OPEN:
        return _refuse(item, f"already_{item.state.value}", item.by)
    # Claiming ends a snooze: someone is on it now.
    return Outcome(True, Item(State.CLAIMED, request.user, now, by_name=request.name),
                   "claimed")


def _snooze(item: Item, request: Request, now: datetime) -> Outcome:
    if item.state in (State.DONE, State.DISMISSED):
        return _refuse(item, f"already_{item.state.value}", item.by)
    if request.until is None or request.until <= now:
        return _refuse(item, "snooze_in_the_past")
    return Outcome(True, replace(item, snoozed_until=request.until), "snoozed")


SNOOZES = ("1h", "4h", "tomorrow")


def snooze_until(choice: str, now: datetime, zone: str) -> datetime:
    """The end of a snooze chosen in Slack: 1 h, 4 h, or tomorrow 08:00 in the person's zone."""
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "4h":
        return now + timedelta(hours=4)
    if choice != "tomorrow":
        raise ValueError(f"snooze: unknown choice {choice!r} (one of {', '.join(SNOOZES)})")
    local = now.astimezone(ZoneInfo(zone))
    # A calendar day on, then 08:00 on the wall clock: right across a DST change.
    morning = datetime.combine(local.date() + timedelta(days=1), time(8), tzinfo=local.tzinfo)
    return morning.astimezone(now.tzinfo)
