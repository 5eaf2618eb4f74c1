"""Escalation rows: planned with the alert that posts a story to a route, each due at its time;
cancelled or moved in the transaction that changes the item.

One row per recipient per round (bot/rules/escalation.py decides the rounds): a reply in the
alert's thread naming everyone in `escalate_to`, a DM to each listed user, a post in each listed
channel other than the route's. The dedupe key names story, route, round and recipient, so each
goes once however often it is planned (restarts, replicas). A row about a story the desk has
acted on since is settled `cancelled`, with why in `last_error`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from bot.db.schema import DELIVERIES
from bot.outbox import planning  # which calls back here: read `planning.add` when called
from bot.outbox.queue import DUE
from bot.rules.claims import Item, State
from bot.rules.escalation import Policy, Quiet, Round, moved, plan
from bot.rules.targets import Target
from bot.stories import actions

KIND = "escalate"


def plan_escalations(db: Connection, target: Target, parent_id: int | None, items: Sequence[Any],
                     now: datetime) -> int:
    """Queue the escalation rounds of `items` (rows with `story_id` and `impact`) posted to
    `target` by the row `parent_id`; return how many rows were added."""
    policy = target.escalation
    if policy is None:
        return 0
    added = 0
    for entry in items:
        if entry.impact < policy.impact:
            continue  # not escalated: spare the read of its state
        item, _ = actions.read(db, entry.story_id)
        found = plan(policy, entry.impact, now, target.quiet, item)
        for round_ in found.rounds:
            added += _add_round(db, target, parent_id, entry.story_id, entry.impact, policy,
                                round_, now)
    return added


def recipients(channel: str, to: Sequence[str]) -> list[tuple[str, str]]:
    """(how, address) of each row of a round: the thread reply in the route's channel, a DM to
    each user, a post in each other channel (user groups are only mentioned)."""
    found = [("thread", channel)]
    for given in dict.fromkeys(to):  # a listed id once, in the order written
        if given.startswith(("U", "W")):
            found.append(("dm", given))
        elif given.startswith(("C", "G")) and given != channel:
            found.append(("channel", given))
    return found


def _add_round(db: Connection, target: Target, parent_id: int | None, story_id: str,
               impact: float, policy: Policy, round_: Round, now: datetime) -> int:
    quiet = target.quiet
    details = {"story_id": story_id, "route": target.address, "impact": impact,
               "escalate_impact": policy.impact,
               "round": round_.number, "of": policy.repeat,
               "after": policy.after.total_seconds(), "to": list(policy.to),
               "quiet": {"hours": quiet.hours, "zone": quiet.zone,
                         "break_through": quiet.break_through}}
    added = 0
    for how, address in recipients(target.address, policy.to):
        added += planning.add(
            db, now, due=round_.due,
            dedupe=f"{KIND}:{story_id}:{target.key}:{round_.number}:{address}",
            transport="slack", target=f"slack:{address}", kind=KIND,
            reason=(f"{story_id} escalation {round_.number}/{policy.repeat} "
                    f"({how}): {round_.reason}"),
            parent_id=parent_id if how == "thread" else None,
            details={**details, "how": how}) is not None
    return added


def pending(db: Connection, story_id: str) -> list[Any]:
    """The story's escalation rows not yet sent (pending, or failed and to be retried)."""
    rows = db.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.details, DELIVERIES.c.not_before)
        .where(DELIVERIES.c.dedupe_key.startswith(f"{KIND}:{story_id}:", autoescape=True),
               DELIVERIES.c.status.in_(DUE))
    )
    # The prefix may also match a story whose id extends this one's: the details say whose.
    return [row for row in rows if (row.details or {}).get("story_id") == story_id]


def follow(db: Connection, story_id: str, item: Item, now: datetime) -> int:
    """After a change of the item: a claim, done or dismiss cancels its pending escalations,
    a snooze moves them to its end. A re-open changes nothing (see docs/decisions.md).
    Return how many rows changed."""
    rows = pending(db, story_id)
    if not rows:
        return 0
    if item.state is not State.OPEN:
        return cancel(db, [row.id for row in rows], f"{item.state.value} by {item.by}")
    if item.snoozed_until is None or item.snoozed_until <= now:
        return 0
    by_route: dict[str, list[Any]] = {}
    for row in rows:
        by_route.setdefault(row.details["route"], []).append(row)
    for group in by_route.values():
        _move(db, group, item.snoozed_until)
    return len(rows)


def _move(db: Connection, rows: list[Any], until: datetime) -> None:
    """One route's pending rows: their rounds start again at the snooze's end (or when the
    first was due, if later)."""
    first = rows[0].details
    policy = Policy(timedelta(seconds=first["after"]), first["escalate_impact"],
                    tuple(first["to"]), first["of"])
    quiet = Quiet(**first["quiet"])
    numbers = sorted({row.details["round"] for row in rows})
    first_due = min(row.not_before for row in rows)
    due = {r.number: r for r in moved(policy, first["impact"], until, quiet, numbers,
                                      first_due)}
    for row in rows:
        round_ = due[row.details["round"]]
        db.execute(update(DELIVERIES)
                   .where(DELIVERIES.c.id == row.id, DELIVERIES.c.status.in_(DUE))
                   .values(not_before=round_.due, last_error=f"moved by a snooze: {round_.reason}"))


def retire(db: Connection, policies: Mapping[str, Policy | None]) -> int:
    """At start: cancel the pending rows the configuration no longer asks for — a route that
    stopped escalating (`policies[route]` None or absent), a user or channel taken out of its
    `escalate_to` — so that an operator who edits the file and restarts stops them. Return how
    many."""
    rows = db.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.target, DELIVERIES.c.details)
        .where(DELIVERIES.c.kind == KIND, DELIVERIES.c.status.in_(DUE))
    )
    stopped: list[int] = []
    dropped: list[int] = []
    for row in rows:
        details = row.details or {}
        policy = policies.get(str(details.get("route")))
        address = str(row.target).removeprefix("slack:")
        if policy is None:
            stopped.append(row.id)
        elif details.get("how") != "thread" and address not in policy.to:
            dropped.append(row.id)
    return (cancel(db, stopped, "the route no longer escalates")
            + cancel(db, dropped, "no longer in the route's escalate_to"))


def cancel(db: Connection, ids: Sequence[int], why: str) -> int:
    """Settle rows that must not go (the item was acted on) as `cancelled`, saying why."""
    if not ids:
        return 0
    result = db.execute(
        update(DELIVERIES).where(DELIVERIES.c.id.in_(list(ids)),
                                 DELIVERIES.c.status.in_((*DUE, "sending")))
        .values(status="cancelled", last_error=f"cancelled: {why}"[:2000], lease_until=None)
    )
    return int(result.rowcount or 0)


def thread_of(db: Connection, parent_id: int) -> Any:
    """The alert a thread reply answers: its status, when it is due (a retry's time) and the
    posted message's id (Slack ts)."""
    return db.execute(select(DELIVERIES.c.status, DELIVERIES.c.not_before,
                             DELIVERIES.c.remote_id)
                      .where(DELIVERIES.c.id == parent_id)).first()
