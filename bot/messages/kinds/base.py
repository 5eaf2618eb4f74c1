"""What every message kind is: how a row of it loads, renders and is delivered.

A kind subclasses `Kind`, sets its name and traits, overrides what differs from a message
listing its stories (posted to Slack or emailed), and is registered in `kinds/__init__.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import Connection

from bot import outbox
from bot.messages import mail
from bot.messages.render import Item, item_context, owner_line, slack_message, slack_thread_reply
from bot.metrics import Metrics
from bot.rules.escalation import Verdict
from bot.settings import CommandNames
from bot.stories.model import Story
from bot.transports import DeliveryError, SlackCall

if TYPE_CHECKING:
    from bot.messages import Renderer


class Entry(NamedTuple):
    """One story in a message, shaped like the outbox's `items_of` rows."""

    story_id: str
    reason: str  # the operator's plain form; shown only when `why` is None (older rows)
    payload: str  # the stored story's JSON
    why: str | None = None  # the reason's clauses as JSON (bot/rules/reasons.py)


@dataclass(frozen=True)
class Load:
    """What a row needs to render: its stories (`Entry`-shaped rows) and, for an edit, the
    posted message it edits."""

    items: list[Any]
    parent: Any = None
    owners: dict[str, dict[str, Any]] = field(default_factory=dict)  # action-item states
    # Not to be sent (a row about an item the desk has acted on since it was planned): the
    # workers settle it cancelled, or put it back until `withheld.until`, without sending.
    withheld: Verdict | None = None


@dataclass(frozen=True)
class Message:
    """One row as a kind renders it: where it goes, what the row keeps, what was loaded."""

    transport: str  # "slack", "email", …
    address: str  # the target without its transport: a channel ID, an email address
    details: dict[str, Any]  # the row's details ({} when it has none)
    load: Load
    now: datetime


# What a claim has read for the rows before this one, for those after (readers of one daily
# digest share its stories). Keys start with the kind's name, or with "*" for what every
# kind may use: CLAIMED, the claim's rows, set by the delivery workers.
Shared = dict[tuple[Any, ...], Any]
CLAIMED = ("*claimed",)
_MATCHES = ("*matches",)  # every claimed row's matches, read at once
_OWNERS = ("*owners",)  # the action-item states of the claimed Slack rows' stories


class Kind:
    """A message kind. The default is a message listing its stories (alert, batch, test): it
    loads the matches its row carries and renders `templates/slack/<name>.json.j2` for Slack,
    `templates/email/<name>.{subject.txt,txt,html}` for email."""

    name: str = ""
    formerly: tuple[str, ...] = ()  # names rows of it were stored under by older releases
    instant: bool = False  # stories sent as they are scored: counted in scored→sent latency
    one_try: bool = False  # reports at once: dead on its first failure, never postponed
    needs_stories: bool = True  # refused (permanently) when its stories are no longer stored

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        """What a claimed row needs, read in the claim's transaction: its stories and, for
        Slack (whose messages show who owns an item), their action-item states."""
        claimed: list[Any] = shared.get(CLAIMED, [row])
        if _MATCHES not in shared:
            # One query for the whole claim, where a query or two a row cost ~1 ms each.
            shared[_MATCHES], shared[_OWNERS] = outbox.items_of_many(
                db, [r.id for r in claimed])
        load = Load(shared[_MATCHES].get(row.id, []))
        if row.transport != "slack":
            return load
        owners: dict[str, dict[str, Any]] = shared[_OWNERS]
        return replace(load, owners={m.story_id: owners[m.story_id] for m in load.items
                                     if m.story_id in owners})

    def sent(self, row: Any, metrics: Metrics) -> None:
        """Count what a sent row of this kind means beyond the deliveries counter (none)."""

    def render(self, renderer: Renderer, message: Message) -> Any:
        """Slack: a list of (method, arguments) calls. Email: an `EmailMessage` (or an
        `Outgoing`, already serialized)."""
        items = stories(renderer, message.load, self.needs_stories)
        if message.transport == "slack":
            return [("chat.postMessage", self.slack(items, message.address, renderer.commands))]
        return mail.compose(self.name, items, message.address, renderer.config.settings,
                            renderer.key, message.now)

    def slack(self, items: Sequence[Item], channel: str, commands: CommandNames
              ) -> dict[str, Any]:
        """Its Slack message (chat.postMessage arguments): what a post sends, and what an edit
        of a posted one (`update`) shows. Slack gets every item: the template lists as many as
        fit and names the rest."""
        return slack_message(self.name, items, channel, commands)


def stories(renderer: Renderer, load: Load, required: bool = True) -> list[Item]:
    """The loaded stories as shown now; none left (deleted since) fails the row for good."""
    items = [renderer.item(Story.model_validate_json(m.payload), shown_why(m),
                           owner=_shown_owner(load.owners.get(m.story_id)))
             for m in load.items]
    if required and not items:
        raise DeliveryError("its stories are no longer stored", permanent=True)
    return items


class Edit(Kind):
    """A kind that edits a posted Slack message — its own kind rendered again, so it shows
    current figures and owners — and says once in its thread what changed
    (`templates/slack/<name>.json.j2`). `details["story_id"]` names the story it is about."""

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        """The posted message it edits, the stories it shows, and their action-item states."""
        parent = outbox.parent_of(db, row.parent_id)
        return with_owners(db, Load(outbox.items_of(db, parent.id), parent))

    def edit(self, renderer: Renderer, message: Message, items: list[Item],
             **reply: Any) -> list[SlackCall]:
        """The edit of the posted message showing `items`, and the reply (`reply`: context)."""
        from bot.messages.kinds import kind_of  # the registry imports this module

        parent = message.load.parent
        edited = kind_of(parent.kind).slack(items, message.address, renderer.commands)
        changed = next((i for i in items if i.story.id == message.details["story_id"]), items[0])
        said = slack_thread_reply(self.name, message.address, parent.remote_id,
                                  story=item_context(changed), **reply)
        return [("chat.update", {**edited, "ts": parent.remote_id}), ("chat.postMessage", said)]


def with_owners(db: Connection, load: Load) -> Load:
    """`load` with the action-item state of each of its stories that was acted on."""
    return replace(load, owners=outbox.owners_of(db, [m.story_id for m in load.items]))


def _shown_owner(owner: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if owner is None else {**owner, "says": owner_line(owner)}


def shown_why(row: Any) -> list[dict[str, Any]] | str:
    """A loaded match's reason as its "Why:" template takes it: the clauses, or for a match
    stored before they were kept, the plain reason as it was written."""
    return cast(list[dict[str, Any]], json.loads(row.why)) if row.why else str(row.reason)


class Unknown(Kind):
    """A name no kind here has: a kind from a newer release (rows it wrote during a rolling
    upgrade). Its rows fail as passing failures, so that a replica that knows it sends them."""

    needs_stories = False

    def __init__(self, name: str) -> None:
        self.name = name

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        return Load([])

    def render(self, renderer: Renderer, message: Message) -> Any:
        raise DeliveryError(f"unknown message kind {self.name!r}: written by a newer release?")
