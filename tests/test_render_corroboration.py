"""A story verified only by a count (`verified_by`, no `sources`) shows the count and no empty
outlet list, in every Slack and email template."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.messages.kinds import KINDS
from bot.messages.mail import render_parts
from bot.messages.render import (
    Item,
    _texts,
    item_context,
    slack_blocks,
    slack_thread_reply,
    story_context,
    templates_dir,
)
from bot.settings import CommandNames
from bot.stories.model import Story
from tests.conftest import story

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


def counted_only(story_id: str = "counted") -> Item:
    parsed = Story.model_validate(story(id=story_id, sources=None, verified_by=3,
                                        sentiment="neutral", impact=9))
    assert parsed.sources is None and parsed.verified_by == 3
    return Item(parsed, "impact 9 ≥ 8 · 3 independent sources ≥ 2")


def texts(message: dict[str, Any]) -> list[str]:
    return [message["text"], *_texts(message["blocks"])]


def _one() -> dict[str, Any]:
    return item_context(counted_only())


def _two() -> list[dict[str, Any]]:
    return [item_context(counted_only("counted-a")), item_context(counted_only("counted-b"))]


# Each Slack template that renders a story, with how the code renders it.
SLACK: dict[str, Callable[[], dict[str, Any]]] = {
    "alert": lambda: KINDS["alert"].slack([counted_only()], "C0X", CommandNames()),
    "batch": lambda: KINDS["batch"].slack([counted_only("a"), counted_only("b")], "C0X",
                                          CommandNames()),
    "actionitems": lambda: slack_blocks(
        "actionitems", days=1, words=[], total=2, stories=_two(), more=0,
        story_command="/story", command="/actionitems"),
    "story": lambda: slack_blocks("story", story=story_context(counted_only().story, [], [])),
    "story_choices": lambda: slack_blocks("story_choices", query="launch", stories=_two()),
    "update": lambda: slack_thread_reply(
        "update", "C0X", "1700000000.000100", story=_one(),
        change={"qualifies": [True, True], "sources": [2, 3], "impact": [9, 9], "verdict": ""}),
    "facts": lambda: slack_thread_reply("facts", "C0X", "1700000000.000100", story=_one()),
    "unfurl": lambda: slack_blocks("unfurl", story=_one(), story_command="/story"),
}
# Slack templates that show no story at all (the test below checks that they say nothing of one).
NO_STORY = {"alerts", "command_failed", "dismiss_modal", "done_modal", "escalate",
            "facts_already", "home_dm_modal", "home_email_modal", "home_errors", "item_refused",
            "owner", "story_none", "story_usage", "test"}
# Slack templates that list action items by their count of sources alone, never outlets.
COUNT_ONLY = {"home"}
# Each email kind that renders stories, with its extra context.
EMAIL: dict[str, dict[str, Any]] = {
    "alert": {}, "batch": {}, "daily": {"day": NOW.date(), "since": NOW},
}
EMAIL_NO_STORY = {"test", "confirm"}

EMPTY_AFTER_COLON = re.compile(r"verified by \d+[^:·\n]*:\s*(?:·|$)", re.I | re.M)
EMPTY_LINE_AFTER = re.compile(r"verified by \d+[^\n]*\n\s*$", re.I)


def assert_no_empty_outlets(text: str) -> None:
    assert ":  ·" not in text and ": ·" not in text, text
    assert not EMPTY_AFTER_COLON.search(text), text
    assert not EMPTY_LINE_AFTER.search(text), text  # a label whose outlet line is empty


def slack_templates() -> set[str]:
    return {p.name.removesuffix(".json.j2") for p in (templates_dir() / "slack").glob("*.j2")}


def email_kinds() -> set[str]:
    return {p.name.removesuffix(".subject.txt")
            for p in (templates_dir() / "email").glob("*.subject.txt")}


def test_every_template_is_covered() -> None:
    assert set(SLACK) | NO_STORY | COUNT_ONLY == slack_templates()
    for name in COUNT_ONLY:
        assert "outlets" not in (templates_dir() / "slack" / f"{name}.json.j2").read_text()
    assert set(EMAIL) | EMAIL_NO_STORY == email_kinds()
    for name in NO_STORY:
        source = (templates_dir() / "slack" / f"{name}.json.j2").read_text()
        assert "outlets" not in source and "verified" not in source.lower()
    for name in EMAIL_NO_STORY:
        source = (templates_dir() / "email" / f"{name}.html").read_text()
        assert "outlets" not in source


@pytest.mark.parametrize("name", sorted(SLACK))
def test_slack_shows_the_count_and_no_empty_outlet_list(name: str) -> None:
    message = SLACK[name]()
    for text in texts(message):
        assert_no_empty_outlets(text)
    if name != "facts":  # the key facts reply shows no figures
        assert re.search(r"verified by 3\b", "\n".join(texts(message)), re.I)


@pytest.mark.parametrize("kind", sorted(EMAIL))
def test_email_shows_the_count_and_no_empty_outlet_list(kind: str) -> None:
    parts = render_parts(kind, [counted_only("a"), counted_only("b")], **EMAIL[kind])
    # The HTML as a reader sees it: tags gone, entities read.
    seen = html.unescape(re.sub(r"<[^>]+>", "", parts.html))
    for text in (parts.subject, parts.text, seen):
        for line in text.splitlines():
            assert_no_empty_outlets(line)
    assert re.search(r"verified by 3\b", parts.text, re.I)
    assert re.search(r"verified by 3\b", seen, re.I)


def test_the_check_catches_the_old_rendering() -> None:
    # What the digest showed before: the assertion above must fail on it.
    for old in ("Impact 9 · verified by 3:  · neutral", "*Verified by 3 independent sources*\n"):
        with pytest.raises(AssertionError):
            assert_no_empty_outlets(old)
