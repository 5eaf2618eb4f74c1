"""The rule (docs/stories.md) as pure functions: the gate, corroboration, versions, max age,
routes, batching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.rules.batching import in_quiet_hours, plan
from bot.rules.gate import Thresholds, corroborate, gate, is_newer, too_old
from bot.rules.reasons import plain
from bot.rules.targets import (
    ByTopic,
    SlackRoute,
    email_target,
    match,
    slack_route_target,
    slack_targets,
)
from bot.settings import DeskConfig
from bot.stories.model import Story
from tests.conftest import story

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
LIMITS = Thresholds(8, 2)


def src(outlet: str | None = None, url: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in {"outlet": outlet, "url": url}.items() if v is not None}


@pytest.mark.parametrize(("impact", "sources", "qualifies", "reason"), [
    (8, 2, True, "impact 8 ≥ 8 · 2 independent sources ≥ 2"),
    (7.9, 3, False, "impact 7.9 < 8 · 3 independent sources ≥ 2"),
    (10, 1, False, "impact 10 ≥ 8 · 1 independent source < 2"),
    (9.5, 0, False, "impact 9.5 ≥ 8 · 0 independent sources < 2"),
])
def test_the_gate_says_which_threshold_passed(impact: float, sources: int, qualifies: bool,
                                              reason: str) -> None:
    verdict = gate(impact, sources, LIMITS)
    assert (verdict.qualifies, verdict.reason) == (qualifies, reason)


@pytest.mark.parametrize(("sources", "verified_by", "count", "flagged"), [
    ([src("FT.com"), src("https://www.ft.com/content/x")], None, 1, False),
    ([src("FT.com"), src("Reuters")], None, 2, False),
    ([src(url="https://www.ft.com/a"), src(url="https://ft.com/b"), src("Bloomberg")], None, 2,
     False),
    (None, 3, 3, False),
    ([src("FT.com"), src("Reuters")], 4, 2, True),
    ([src("FT.com"), src("Reuters"), src("AP")], 1, 1, True),
])
def test_corroboration_counts_distinct_outlets_and_the_smaller_wins(
    sources: list[dict[str, Any]] | None, verified_by: int | None, count: int, flagged: bool
) -> None:
    parsed = Story.model_validate(story(sources=sources, verified_by=verified_by))
    result = corroborate(parsed)
    assert result.count == count
    assert (result.flag is not None) == flagged


@pytest.mark.parametrize(("incoming", "stored", "newer"), [
    ({"version": 3}, (2, NOW), True),
    ({"version": 2}, (2, NOW - timedelta(hours=1)), False),  # equal version: ignored
    ({"version": 1}, (2, NOW - timedelta(hours=1)), False),
    ({}, (None, NOW - timedelta(minutes=1)), True),  # no versions: later scored_at wins
    ({}, (None, NOW), False),  # the same payload again
])
def test_only_a_newer_version_replaces_a_story(incoming: dict[str, Any],
                                               stored: tuple[int | None, datetime],
                                               newer: bool) -> None:
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), **incoming))
    assert is_newer(parsed, *stored) is newer


def test_a_story_older_than_max_age_is_not_alerted_and_says_why() -> None:
    assert too_old(NOW - timedelta(hours=23), NOW, timedelta(hours=24)) is None
    reason = too_old(NOW - timedelta(hours=30), NOW, timedelta(hours=24))
    assert reason is not None and "30.0 h ago" in plain((reason,))


DESK = DeskConfig.model_validate({"slack": {"routes": [
    {"channel": "C0SPACEOPS", "topics": ["launch", "satellites"], "min_impact": 9},
    {"channel": "C0ALL"},
    {"channel": "C0GLOOM", "sentiments": ["very_negative"]},
    {"channel": "C0LAX", "min_impact": 5},
]}})


@pytest.mark.parametrize(("fields", "sent_to"), [
    ({"impact": 9, "topics": ["launch"]}, {"C0SPACEOPS", "C0ALL", "C0LAX"}),
    ({"impact": 8, "topics": ["launch"]}, {"C0ALL", "C0LAX"}),
    ({"impact": 9, "topics": ["budget"]}, {"C0ALL", "C0LAX"}),
    ({"impact": 9, "topics": ["launch"], "sentiment": "very_negative"},
     {"C0SPACEOPS", "C0ALL", "C0GLOOM", "C0LAX"}),
    ({"impact": 7, "topics": ["launch"]}, set()),  # a route can tighten, never loosen the gate
])
def test_routes_filter_by_topic_impact_and_sentiment(fields: dict[str, Any],
                                                     sent_to: set[str]) -> None:
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), **fields))
    decisions = [match(parsed, corroborate(parsed), t, NOW, timedelta(hours=24))
                 for t in slack_targets(DESK)]
    assert {d.target.address for d in decisions if d.send} == sent_to


def test_a_match_carries_the_reason_shown_to_readers() -> None:
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), impact=9,
                                        sources=[src("A"), src("B"), src("C")]))
    target = slack_targets(DESK)[0]
    decision = match(parsed, corroborate(parsed), target, NOW, timedelta(hours=24))
    assert decision.reason == ("impact 9 ≥ 9 · 3 independent sources ≥ 2 · "
                               "route C0SPACEOPS topics=[launch,satellites]")


def test_a_story_meets_only_the_targets_that_could_take_it_with_the_same_decisions() -> None:
    """Ingest asks `match` only of the targets `ByTopic` offers (issue 14: 100 routes of one
    topic each): every decision to send is the one asking every target gives, reason and
    order included, and a target skipped is one `match` declines."""
    alerts = [SlackRoute("U0ANNA", ("Cyber",), None, "U0ANNA", NOW),
              SlackRoute("C0ALERTS", (), 9.5, "U0BOB", NOW)]
    targets = [*slack_targets(DESK), *(slack_route_target(r, DESK) for r in alerts),
               email_target("a@desk.example", ["LAUNCH", "budget"], DESK),
               email_target("b@desk.example", [], DESK, 9)]
    index = ByTopic(targets)
    for fields in ({"topics": ["launch"]}, {"topics": ["Budget", "cyber"], "impact": 10},
                   {"topics": []}, {"topics": ["nothing-routed"], "impact": 9.5},
                   {"topics": ["launch"], "sentiment": "very_negative", "impact": 9}):
        parsed = Story.model_validate(story(scored_at=NOW.isoformat(), **fields))
        every = [match(parsed, corroborate(parsed), t, NOW, timedelta(hours=24))
                 for t in targets]
        offered = index.could_take(parsed)
        some = [match(parsed, corroborate(parsed), t, NOW, timedelta(hours=24))
                for t in offered]
        assert [d for d in every if d.send] == [d for d in some if d.send], fields
        assert [t for t in targets if t in offered] == offered  # the order given
        skipped = [d for d in every if d.target not in offered]
        assert skipped and not any(d.send for d in skipped), fields
    assert len(index.could_take(Story.model_validate(story(topics=["cyber"])))) < len(targets)


WINDOW = timedelta(seconds=30)


@pytest.mark.parametrize(("pending", "last", "close", "send"), [
    (0, None, False, False),
    (1, None, False, True),  # leading edge: nothing ever sent
    (3, NOW - timedelta(seconds=31), False, True),  # window long closed
    (2, NOW - timedelta(seconds=10), False, False),  # window open: held
    (2, NOW - timedelta(seconds=10), True, True),  # `check` closes windows
    (2, NOW - timedelta(seconds=30), False, True),  # closes exactly at the boundary
])
def test_batching_sends_at_once_then_holds_until_the_window_closes(
    pending: int, last: datetime | None, close: bool, send: bool
) -> None:
    decision = plan(pending, last, WINDOW, NOW, close)
    assert decision.send is send
    if not send and pending:
        assert decision.due_at == last + WINDOW if last else None
        assert "held until" in decision.reason


NY = "America/New_York"


@pytest.mark.parametrize(("utc", "quiet", "zone", "inside"), [
    ("2026-11-27T03:59:00", "22:00-07:00", NY, True),  # 22:59 in New York
    ("2026-11-27T02:59:00", "22:00-07:00", NY, False),  # 21:59
    ("2026-11-27T11:59:00", "22:00-07:00", NY, True),  # 06:59
    ("2026-11-27T12:00:00", "22:00-07:00", NY, False),  # 07:00: quiet hours have ended
    ("2026-07-01T02:30:00", "22:00-07:00", NY, True),  # 22:30 EDT (DST): the zone decides
    ("2026-07-01T01:30:00", "22:00-07:00", NY, False),  # 21:30 EDT
    ("2026-11-27T13:00:00", "12:00-14:00", "UTC", True),  # a range that does not wrap
    ("2026-11-27T14:00:00", "12:00-14:00", "UTC", False),
    ("2026-11-27T13:00:00", None, "UTC", False),
])
def test_quiet_hours_are_read_in_the_routes_own_zone(utc: str, quiet: str | None, zone: str,
                                                     inside: bool) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert in_quiet_hours(now, quiet, zone) is inside


def test_a_route_made_in_slack_carries_its_quiet_hours_into_its_target() -> None:
    route = SlackRoute("C0NEW", ("launch",), 9, "U1", NOW, "22:00-07:00", "Europe/London")
    target = slack_route_target(route, DESK)
    assert (target.quiet_hours, target.timezone, target.thresholds.min_impact) == (
        "22:00-07:00", "Europe/London", 9)
    assert target.label == "route C0NEW topics=[launch] (via /alerts)"
