"""What a delivery row says: its stories as stored now, rendered for its transport.

Each message kind is a module in `bot/messages/kinds/` behind one registry (`kind_of`): how a
row of it loads, renders and is delivered. The delivery workers and `alertbot preview` both
call `Renderer.render`, so a preview is exactly what would be sent. Wording lives in the
templates (`render.py` for Slack, `mail.py` for email).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from bot.messages.kinds import Entry, Load, Message, kind_of
from bot.messages.render import Item, Why
from bot.rules.gate import corroborate, gate, global_thresholds
from bot.settings import CommandNames, Config
from bot.stories.model import Story

RENDERED_KEPT = 256  # distinct shared renderings kept (daily: topic mixes × dates × zones)
T = TypeVar("T")

__all__ = ["RENDERED_KEPT", "Entry", "Load", "Renderer"]


@dataclass(frozen=True)
class Renderer:
    config: Config
    key: bytes  # signs the unsubscribe links
    _shared: dict[Hashable, Any] = field(default_factory=dict)

    def render(self, kind: str, transport: str, target: str, details: dict[str, Any] | None,
               load: Load, now: datetime) -> Any:
        """A row of `kind` as its transport takes it. Slack: a list of (method, arguments)
        calls. Email: an `EmailMessage`, or for a daily digest usually an `Outgoing`."""
        message = Message(transport, target.partition(":")[2], details or {}, load, now)
        return kind_of(kind).render(self, message)

    @property
    def commands(self) -> CommandNames:
        return self.config.desk.slack.commands

    def shared(self, content: Hashable, make: Callable[[], T]) -> T:
        """One rendering for every row with the same `content` (readers of the same daily
        digest), made on first use; past RENDERED_KEPT the oldest is forgotten."""
        found = self._shared.get(content)
        if found is None:
            found = make()
            if len(self._shared) >= RENDERED_KEPT:
                self._shared.pop(next(iter(self._shared)))  # the oldest
            self._shared[content] = found
        return cast(T, found)

    def item(self, story: Story, why: Why, alerted: bool = False,
             owner: dict[str, Any] | None = None) -> Item:
        """A story as shown now: marked when a re-score took it below the desk's rule."""
        corroboration = corroborate(story)
        verdict = gate(story.impact, corroboration.count,
                       global_thresholds(self.config.desk.rules))
        downgraded = None if verdict.qualifies else [c.data() for c in verdict.why]
        return Item(story, why, downgraded, alerted, owner, corroboration)
