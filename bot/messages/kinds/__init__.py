"""Message kinds: one module each, behind one registry, the only code that knows a kind by its
name. A kind says how a row of it loads what it needs (in the claim's transaction), how it
renders for its transport, and what the delivery workers must know of it (`Kind`).

Add one: a module here with a `Kind` subclass and `KIND = …`, its templates, and its `KIND` in
`KINDS` below (docs/design.md, "Add a message kind").
"""

from __future__ import annotations

from bot.messages.kinds import (
    alert,
    batch,
    confirm,
    daily,
    escalate,
    facts,
    owner,
    test,
    unfurl,
    update,
)
from bot.messages.kinds.base import CLAIMED, Entry, Kind, Load, Message, Shared, Unknown, stories

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    alert.KIND, batch.KIND, daily.KIND, update.KIND, owner.KIND, facts.KIND, escalate.KIND,
    test.KIND, unfurl.KIND, confirm.KIND)}

# Every name a stored row may carry: the kinds' own, then the names they had before.
_STORED: dict[str, Kind] = {
    **{old: kind for kind in KINDS.values() for old in kind.formerly}, **KINDS}


def kind_of(name: str) -> Kind:
    """The kind a row's `kind` names. A name it had before counts; one no kind has gets an
    `Unknown` kind, whose rows are retried rather than stopping the claim."""
    found = _STORED.get(name)
    return found if found is not None else Unknown(name)


__all__ = ["CLAIMED", "KINDS", "Entry", "Kind", "Load", "Message", "Shared", "Unknown", "kind_of",
           "stories"]
