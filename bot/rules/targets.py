"""Where action items go: Slack routes and instant email subscribers, as uniform targets.

`match(story, target, ...)` is the pure per-target decision; it returns a `Match` with its reason
as clauses (bot/rules/reasons.py), e.g. impact 9 ≥ 8 · 3 independent sources ≥ 2 · route C0SPACEOPS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from bot.rules.escalation import Policy, Quiet
from bot.rules.gate import Corroboration, Thresholds, gate, too_old
from bot.rules.reasons import Clause, Why, plain, target_clause
from bot.settings import DeskConfig
from bot.stories.model import Sentiment, Story

Transport = Literal["slack", "email"]


@dataclass(frozen=True)
class SlackRoute:
    """A route made in Slack with `/alerts` (stored by `bot.readers.slack_routes`)."""

    address: str  # a channel ID, or a user ID for direct messages
    topics: tuple[str, ...]
    min_impact: float | None
    created_by: str
    created_at: datetime
    quiet_hours: str | None = None
    timezone: str = "UTC"

    @property
    def direct(self) -> bool:
        return self.address.startswith(("U", "W"))


@dataclass(frozen=True)
class Target:
    """One place alerts go, with its own filters and batch window."""

    transport: Transport
    address: str  # Slack channel ID or email address
    named: Clause  # how a reason names it (a "target" clause)
    thresholds: Thresholds
    batch_window: timedelta
    topics: frozenset[str] = frozenset()
    sentiments: frozenset[Sentiment] = frozenset()
    quiet_hours: str | None = None  # "22:00-07:00" in `timezone`
    timezone: str = "UTC"
    break_through_impact: float = 10
    # Escalation of unclaimed items (config routes only; bot/rules/escalation.py).
    escalate_after: timedelta | None = None
    escalate_impact: float = 9
    escalate_to: tuple[str, ...] = ()
    escalate_repeat: int = 1

    @property
    def escalation(self) -> Policy | None:
        if self.escalate_after is None or not self.escalate_to:
            return None
        return Policy(self.escalate_after, self.escalate_impact, self.escalate_to,
                      self.escalate_repeat)

    @property
    def quiet(self) -> Quiet:
        return Quiet(self.quiet_hours, self.timezone, self.break_through_impact)

    @property
    def key(self) -> str:
        return f"{self.transport}:{self.address}"

    @property
    def label(self) -> str:
        """The operator's name for it: "route C0SPACEOPS topics=[launch]"."""
        return plain((self.named,))


def _stricter(desk_value: float, route_value: float | None) -> float:
    """A route's threshold where it wrote one; it may only tighten the desk's gate."""
    return desk_value if route_value is None else max(desk_value, route_value)


def slack_targets(desk: DeskConfig) -> list[Target]:
    """Turn the config file's Slack routes into targets.

    A value the route wrote wins, zero and empty included ("0s" means no batching); only an
    absent key (None) takes the desk's. Never `route.x or desk.x`: a zero timedelta is falsy.
    """
    rules = desk.rules
    return [
        Target(
            transport="slack",
            address=route.channel,
            named=target_clause("route", route.channel, route.topics),
            thresholds=Thresholds(
                _stricter(rules.min_impact, route.min_impact),
                int(_stricter(rules.min_sources, route.min_sources)),
            ),
            batch_window=(desk.slack.batch_window if route.batch_window is None
                          else route.batch_window),
            topics=frozenset(route.topics),
            sentiments=frozenset(route.sentiments),
            quiet_hours=route.quiet_hours,
            timezone=route.timezone,
            break_through_impact=route.break_through_impact,
            escalate_after=route.escalate_after,
            escalate_impact=route.escalate_impact,
            escalate_to=route.escalate_to,
            escalate_repeat=route.escalate_repeat,
        )
        for route in desk.slack.routes
    ]


def slack_route_target(route: SlackRoute, desk: DeskConfig) -> Target:
    """A route made with `/alerts`: a channel, or a person's DMs."""
    rules = desk.rules
    kind = "dm" if route.direct else "route"
    return Target(
        transport="slack",
        address=route.address,
        named=target_clause(kind, route.address, route.topics, via_alerts=True),
        thresholds=Thresholds(_stricter(rules.min_impact, route.min_impact), rules.min_sources),
        batch_window=desk.slack.batch_window,
        topics=frozenset(route.topics),
        quiet_hours=route.quiet_hours,
        timezone=route.timezone,
    )


def email_target(address: str, topics: Iterable[str], desk: DeskConfig,
                 min_impact: float | None = None) -> Target:
    topic_set = frozenset(t.lower() for t in topics)
    return Target(
        transport="email",
        address=address,
        named=target_clause("subscriber", address, topic_set),
        thresholds=Thresholds(_stricter(desk.rules.min_impact, min_impact),
                              desk.rules.min_sources),
        batch_window=desk.email.batch_window,
        topics=topic_set,
    )


class Match(NamedTuple):
    """One (story, target) decision. A NamedTuple: ingest makes one per story per target."""

    target: Target
    story_id: str
    version: int | None
    send: bool
    why: Why

    @property
    def reason(self) -> str:
        return plain(self.why)


def match(
    story: Story,
    corroboration: Corroboration,
    target: Target,
    now: datetime,
    max_age: timedelta,
) -> Match:
    """Decide whether `story` goes to `target` now, and say why (or why not)."""
    # Ingest asks this for every story and target: no closure or copy made before it is needed.
    verdict = gate(story.impact, corroboration.count, target.thresholds)
    if not verdict.qualifies:
        return Match(target, story.id, story.version, False, verdict.why)
    if target.topics and not (target.topics & story.topic_set):
        return Match(target, story.id, story.version, False,
                     (Clause("no_topic", {"target": dict(target.named.figures)}),))
    if target.sentiments and story.sentiment not in target.sentiments:
        return Match(target, story.id, story.version, False, (
            Clause("sentiment", {"value": story.sentiment.label,
                                 "target": dict(target.named.figures)}),))
    stale = too_old(story.scored_at, now, max_age)
    if stale:
        return Match(target, story.id, story.version, False, (stale,))
    return Match(target, story.id, story.version, True, (*verdict.why, target.named))


class ByTopic:
    """Targets indexed by topic, so a story meets only those that could take it.

    `match` declines a target with topics that a story has none of (`no_topic`); ingest keeps
    only the matches to send, so skipping those targets changes no decision kept: with 100
    routes of one topic each, a story meets 1–2 targets instead of 100. Targets come back in
    their given order, as `match` over all of them would have visited them.
    """

    def __init__(self, targets: Iterable[Target]) -> None:
        self._targets = list(targets)
        self._open = [n for n, t in enumerate(self._targets) if not t.topics]
        self._by_topic: dict[str, list[int]] = {}
        for n, target in enumerate(self._targets):
            for topic in target.topics:
                self._by_topic.setdefault(topic, []).append(n)
        self._seen: dict[frozenset[str], list[Target]] = {}  # stories share a few topic sets

    def could_take(self, story: Story) -> list[Target]:
        """The targets with no topics or one of `story`'s, in the order given."""
        topics = story.topic_set
        found = self._seen.get(topics)
        if found is None:
            positions = set(self._open)
            for topic in topics:
                positions.update(self._by_topic.get(topic, ()))
            found = self._seen[topics] = [self._targets[n] for n in sorted(positions)]
        return found
