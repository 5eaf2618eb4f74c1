"""A rule's reason is data: templates word the "Why:" line for readers, logs keep the plain form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.messages.kinds import KINDS
from bot.messages.mail import render_parts
from bot.messages.render import Item
from bot.messages.templating import why_words
from bot.rules.gate import corroborate
from bot.rules.reasons import Clause, plain, target_clause
from bot.rules.targets import SlackRoute, email_target, match, slack_route_target, slack_targets
from bot.settings import CommandNames, DeskConfig
from bot.stories.model import Story
from tests.conftest import story

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
DESK = DeskConfig.model_validate(
    {"slack": {"routes": [{"channel": "C0SPACEOPS", "topics": ["launch", "satellites"]}]}})
AGE = timedelta(hours=24)


def decided(target_index: int = 0, **fields: object) -> tuple[Story, list[dict[str, object]], str]:
    """A story decided for a target: the story, its reason's clause data, its plain form."""
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), **fields))
    target = slack_targets(DESK)[target_index]
    decision = match(parsed, corroborate(parsed), target, NOW, AGE)
    return parsed, [c.data() for c in decision.why], decision.reason


def test_the_reason_is_clauses_with_figures_and_a_plain_form_for_logs() -> None:
    _, why, reason = decided(impact=9, topics=["launch"])
    assert why == [
        {"is": "impact", "value": 9, "min": 8, "ok": True},
        {"is": "sources", "value": 2, "min": 2, "ok": True},
        {"is": "target", "kind": "route", "address": "C0SPACEOPS",
         "topics": ["launch", "satellites"], "via_alerts": False},
    ]
    assert reason == ("impact 9 ≥ 8 · 2 independent sources ≥ 2 · "
                      "route C0SPACEOPS topics=[launch,satellites]")


def test_slack_and_both_email_parts_word_the_same_clauses_from_the_template() -> None:
    parsed, why, _ = decided(impact=9.5, topics=["launch"])
    words = "impact 9.5 ≥ 8 · 2 independent sources ≥ 2 · route C0SPACEOPS (launch, satellites)"
    item = Item(parsed, why)
    slack = KINDS["alert"].slack([item], "C0SPACEOPS", CommandNames())
    assert slack["blocks"][-1]["elements"][0]["text"] == f"Why: {words}"
    parts = render_parts("alert", [item])
    assert f"Why: {words}" in parts.text
    assert f"Why: {words}" in parts.html


def test_user_written_topics_in_a_reason_are_escaped_for_each_medium() -> None:
    route = SlackRoute("C0NEW", ("a<b>&c",), None, "U1", NOW)
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), topics=["a<b>&c"]))
    decision = match(parsed, corroborate(parsed), slack_route_target(route, DESK), NOW, AGE)
    item = Item(parsed, [c.data() for c in decision.why])
    slack = json.dumps(KINDS["alert"].slack([item], "C0NEW", CommandNames()), ensure_ascii=False)
    assert "route C0NEW (a&lt;b&gt;&amp;c), set with /alerts" in slack
    assert "a<b>" not in slack
    parts = render_parts("alert", [item])
    assert "(a&lt;b&gt;&amp;c)" in parts.html and "a<b>" not in parts.html
    assert "(a<b>&c)" in parts.text  # plain text is not HTML


@pytest.mark.parametrize(("clause", "words"), [
    (target_clause("dm", "U2", ["cyber"], via_alerts=True), "your DM subscription (cyber)"),
    (target_clause("subscriber", "ed@desk.example"), "your email subscription"),
    (Clause("no_topic", {"target": target_clause("route", "C0X", ["launch"]).figures}),
     "none of the topics of route C0X (launch)"),
    (Clause("sentiment", {"value": "very negative",
                          "target": target_clause("route", "C0X").figures}),
     "sentiment very negative not wanted by route C0X"),
    (Clause("too_old", {"hours": 30.04, "max_age": "1 day, 0:00:00"}),
     "scored 30.0 h ago, older than 1 day, 0:00:00"),
    (Clause("preview", {}), "preview"),
])
def test_every_clause_the_rules_make_has_words_and_a_plain_form(clause: Clause, words: str) -> None:
    assert why_words([clause.data()]) == words
    assert plain((clause,))  # the log's form exists for it too


def test_an_email_readers_reason_names_their_subscription_not_their_address() -> None:
    parsed = Story.model_validate(story(scored_at=NOW.isoformat(), impact=8))
    target = email_target("ed@desk.example", ["launch"], DESK)
    decision = match(parsed, corroborate(parsed), target, NOW, AGE)
    assert decision.reason.endswith("subscriber ed@desk.example topics=[launch]")
    assert why_words([c.data() for c in decision.why]).endswith(
        "· your email subscription (launch)")


def test_a_reason_stored_by_an_older_release_is_shown_as_it_was_written() -> None:
    parsed = Story.model_validate(story(impact=9))
    slack = KINDS["alert"].slack([Item(parsed, "impact 9 ≥ 8 · route C0OLD")], "C0OLD",
                                 CommandNames())
    assert slack["blocks"][-1]["elements"][0]["text"] == "Why: impact 9 ≥ 8 · route C0OLD"
