"""The action-item rule (docs/stories.md) as pure functions that return their reason.

Nothing here touches the database or the clock: callers pass `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.settings import RulesConfig
from bot.stories.model import Story


@dataclass(frozen=True)
class Corroboration:
    count: int
    outlets: tuple[str, ...]  # display names of the distinct outlets, in input order
    flag: str | None = None  # set when `verified_by` and `sources` disagree


def corroborate(story: Story) -> Corroboration:
    """Count distinct outlets among `sources`; fall back on `verified_by`; the smaller wins."""
    if story.sources is None:
        return Corroboration(story.verified_by or 0, ())
    seen: dict[str, str] = {}
    for source in story.sources:
        if source.key is not None and source.key not in seen:
            seen[source.key] = source.display
    count = len(seen)
    outlets = tuple(seen.values())
    if story.verified_by is not None and story.verified_by != count:
        flag = f"verified_by {story.verified_by} disagrees with {count} distinct outlets in sources"
        return Corroboration(min(count, story.verified_by), outlets, flag)
    return Corroboration(count, outlets)


def figure(value: float) -> str:
    """A score as readers see it: 8, 7.9, 8.5 (no trailing .0)."""
    return f"{value:g}"


@dataclass(frozen=True)
class Thresholds:
    min_impact: float
    min_sources: int


class Verdict(NamedTuple):
    qualifies: bool
    reason: str


def gate(impact: float, sources: int, limits: Thresholds) -> Verdict:
    """Apply the impact and corroboration gates; say which passed or failed."""
    impact_ok = impact >= limits.min_impact
    sources_ok = sources >= limits.min_sources
    word = "source" if sources == 1 else "sources"
    parts = (
        f"impact {figure(impact)} {'≥' if impact_ok else '<'} {figure(limits.min_impact)}",
        f"{sources} independent {word} {'≥' if sources_ok else '<'} {limits.min_sources}",
    )
    return Verdict(impact_ok and sources_ok, " · ".join(parts))


def global_thresholds(rules: RulesConfig) -> Thresholds:
    return Thresholds(rules.min_impact, rules.min_sources)


def is_newer(incoming: Story, stored_version: int | None, stored_scored_at: datetime) -> bool:
    """A payload replaces the stored story only with a higher version, else a later scored_at."""
    if incoming.version is not None and stored_version is not None:
        return incoming.version > stored_version
    return incoming.scored_at > stored_scored_at


def too_old(scored_at: datetime, now: datetime, max_age: timedelta) -> str | None:
    """Say why a story is too old to alert instantly, or None when it is fresh enough."""
    age = now - scored_at
    if age <= max_age:
        return None
    hours = age.total_seconds() / 3600
    return f"scored {hours:.1f} h ago, older than max_alert_age {max_age}"


@dataclass(frozen=True)
class Figures:
    """What a reader sees of a story's score: impact, corroboration, and the verdict."""

    impact: float
    sources: int
    qualifies: bool


def change(before: Figures, after: Figures, verdict: str) -> dict[str, object] | None:
    """Describe how a re-scored story changed, for an edited message; None when it did not."""
    if before == after:
        return None
    return {"impact": [before.impact, after.impact], "sources": [before.sources, after.sources],
            "qualifies": [before.qualifies, after.qualifies], "verdict": verdict}
