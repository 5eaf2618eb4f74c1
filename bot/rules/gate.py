"""The action-item rule (docs/stories.md) as pure functions that return their reason.

Nothing here touches the database or the clock: callers pass `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from bot.rules.reasons import Clause, Why, figure, plain
from bot.settings import RulesConfig
from bot.stories.model import Story

__all__ = ["Corroboration", "Figures", "Thresholds", "Verdict", "change", "corroborate", "figure",
           "gate", "global_thresholds", "is_newer", "too_old"]


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
        key = source.key  # a property that parses the outlet or URL: read it once
        if key is not None and key not in seen:
            seen[key] = source.display
    count = len(seen)
    outlets = tuple(seen.values())
    if story.verified_by is not None and story.verified_by != count:
        flag = f"verified_by {story.verified_by} disagrees with {count} distinct outlets in sources"
        return Corroboration(min(count, story.verified_by), outlets, flag)
    return Corroboration(count, outlets)


@dataclass(frozen=True)
class Thresholds:
    min_impact: float
    min_sources: int


class Verdict(NamedTuple):
    qualifies: bool
    why: Why

    @property
    def reason(self) -> str:
        return plain(self.why)


@lru_cache(maxsize=4096, typed=True)
def gate(impact: float, sources: int, limits: Thresholds) -> Verdict:
    """Apply the impact and corroboration gates; say which passed or failed, with figures.

    Remembered per figures (an ingest asks once per story and target, and a desk's stories
    share a few dozen impact and source figures): callers share the clauses, which nobody
    changes. `typed`, so that impact 8 and 8.0 keep their own figure in a stored reason.
    """
    impact_ok = impact >= limits.min_impact
    sources_ok = sources >= limits.min_sources
    why = (Clause("impact", {"value": impact, "min": limits.min_impact, "ok": impact_ok}),
           Clause("sources", {"value": sources, "min": limits.min_sources, "ok": sources_ok}))
    return Verdict(impact_ok and sources_ok, why)


def global_thresholds(rules: RulesConfig) -> Thresholds:
    return Thresholds(rules.min_impact, rules.min_sources)


def is_newer(incoming: Story, stored_version: int | None, stored_scored_at: datetime) -> bool:
    """A payload replaces the stored story only with a higher version, else a later scored_at."""
    if incoming.version is not None and stored_version is not None:
        return incoming.version > stored_version
    return incoming.scored_at > stored_scored_at


def too_old(scored_at: datetime, now: datetime, max_age: timedelta) -> Clause | None:
    """Say why a story is too old to alert instantly, or None when it is fresh enough."""
    age = now - scored_at
    if age <= max_age:
        return None
    return Clause("too_old", {"hours": age.total_seconds() / 3600, "max_age": str(max_age)})


@dataclass(frozen=True)
class Figures:
    """What a reader sees of a story's score: impact, corroboration, and the verdict."""

    impact: float
    sources: int
    qualifies: bool


def change(before: Figures, after: Figures, verdict: Why) -> dict[str, object] | None:
    """Describe how a re-scored story changed, for an edited message; None when it did not.
    `verdict` is kept as clause data: the update's template words it."""
    if before == after:
        return None
    return {"impact": [before.impact, after.impact], "sources": [before.sources, after.sources],
            "qualifies": [before.qualifies, after.qualifies],
            "verdict": [clause.data() for clause in verdict]}
