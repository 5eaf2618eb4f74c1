"""Sign-up confirmations: one `confirm` row per request, unless the address had one lately.

The outbox rows are the record the per-address limit counts, so it holds across restarts and
replicas: at most one confirmation email to an address every CONFIRM_EVERY, and PER_DAY in
any 24 hours, however many times, and from however many clients, it is asked for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, func, select

from bot.db.schema import DELIVERIES, SUBSCRIBERS
from bot.outbox.planning import add

CONFIRM_EVERY = timedelta(minutes=10)  # a reader who lost the first one can ask again soon
PER_DAY = 3  # past that, a flood; a reader stuck that long needs a person, not more mail
KIND = "confirm"  # bot/messages/kinds/confirm.py


class Asked(StrEnum):
    QUEUED = "queued"  # a confirmation email is on its way
    SUBSCRIBED = "subscribed"  # already a subscriber: nothing to confirm, nothing sent
    LIMITED = "limited"  # one went to this address lately: nothing more sent


def request(db: Connection, address: str, expires: int, now: datetime) -> Asked:
    """Queue a confirmation email to `address` (its link valid until `expires`, a Unix
    second), within the per-address limits."""
    if db.scalar(select(SUBSCRIBERS.c.email).where(SUBSCRIBERS.c.email == address)):
        return Asked.SUBSCRIBED
    target = f"email:{address}"
    last, count = db.execute(
        select(func.max(DELIVERIES.c.created_at), func.count())
        .where(DELIVERIES.c.target == target, DELIVERIES.c.kind == KIND,
               DELIVERIES.c.created_at > now - timedelta(days=1))).one()
    if count >= PER_DAY or (last is not None and last > now - CONFIRM_EVERY):
        return Asked.LIMITED
    # The key holds one row per address and CONFIRM_EVERY slot: two replicas asked at once
    # cannot both add one (the unique key refuses the second).
    slot = int(now.timestamp() // CONFIRM_EVERY.total_seconds())
    added = add(db, now, dedupe=f"{KIND}:{address}:{slot}", transport="email", target=target,
                kind=KIND, reason="sign-up confirmation asked for on the sign-up page",
                details={"expires": expires})
    return Asked.LIMITED if added is None else Asked.QUEUED
