"""A Slack batch lists every item while Slack's limits allow, and names the rest by id."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.messages import Entry, Load, Renderer
from bot.messages.kinds import KINDS
from bot.messages.render import (
    HEADER_LIMIT,
    MAX_BLOCKS,
    MESSAGE_TEXT_BUDGET,
    SECTION_LIMIT,
    Item,
    _texts,
)
from bot.settings import CommandNames
from bot.stories.model import Story
from tests.conftest import make_config, story

WHY = "impact 8 ≥ 8 · 2 independent sources ≥ 2 · route C0SPACEOPS"


def items(count: int, id_length: int = 0) -> list[Item]:
    made = []
    for n in range(count):
        story_id = f"item-{n:03d}".ljust(id_length, "x")
        made.append(Item(Story.model_validate(story(
            id=story_id, title=f"Launch provider {n} grounded after an upper-stage anomaly",
        )), WHY))
    return made


def check_block_kit(message: dict[str, Any]) -> None:
    """What Slack would refuse: slack_sdk's own models, then the limits it does not check."""
    blocks = message["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError past a limit
        text = raw.get("text", {}).get("text", "")
        assert len(text) <= (HEADER_LIMIT if raw["type"] == "header" else SECTION_LIMIT)
    assert sum(len(t) for t in _texts(blocks)) <= MESSAGE_TEXT_BUDGET
    assert message["text"]  # the notification and screen-reader fallback


def batch(of: list[Item], channel: str, commands: CommandNames | None = None
          ) -> dict[str, Any]:
    """A batch's Slack message, as the `batch` kind posts it."""
    return KINDS["batch"].slack(of, channel, commands or CommandNames())


def listed_titles(message: dict[str, Any], of: list[Item]) -> list[str]:
    texts = "\n".join(_texts(message["blocks"]))
    return [i.story.title for i in of if f"|{i.story.title}>*" in texts]


def overflow(message: dict[str, Any]) -> str | None:
    """The section naming the items not listed, if any."""
    found = [b["text"]["text"] for b in message["blocks"]
             if b["type"] == "section" and "not listed here" in b["text"]["text"]]
    return found[0] if found else None


def test_a_batch_of_18_lists_all_of_them_and_no_more_line() -> None:
    eighteen = items(18)
    message = batch(eighteen, "C0SPACEOPS")
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == "18 new action items"
    assert listed_titles(message, eighteen) == [i.story.title for i in eighteen]
    assert overflow(message) is None
    assert not any("more" in t for t in _texts(message["blocks"]))
    whys = [b for b in message["blocks"] if b["type"] == "context"
            and b["elements"][0]["text"] == f"Why: {WHY}"]
    assert len(whys) == 18  # each item keeps its reason


def test_a_batch_of_60_stays_valid_and_every_item_can_be_reached() -> None:
    sixty = items(60)
    message = batch(sixty, "C0SPACEOPS")
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"] == "60 new action items"
    listed = listed_titles(message, sixty)
    assert 20 <= len(listed) < 60  # as many as the 50 blocks hold, in order
    assert listed == [i.story.title for i in sixty[:len(listed)]]
    rest = overflow(message)
    assert rest is not None
    assert rest.startswith(f"*{60 - len(listed)} more action items, not listed here.*")
    named = re.findall(r"`(item-\d+)`", rest)
    assert named == [i.story.id for i in sixty[len(listed):]]
    assert "`/story <id>`" in rest and "`/actionitems`" in rest


def test_ids_too_many_to_name_are_counted_and_the_sum_is_every_item() -> None:
    crowd = items(120, id_length=120)  # long ids: not all fit in the overflow section
    message = batch(crowd, "C0SPACEOPS")
    check_block_kit(message)
    listed = listed_titles(message, crowd)
    rest = overflow(message)
    assert rest is not None
    named = re.findall(r"`(item-\d+x*)`", rest)
    hidden = re.search(r" and (\d+) more\. ", rest)
    assert hidden is not None
    assert len(listed) + len(named) + int(hidden.group(1)) == 120
    assert rest.startswith(f"*{120 - len(listed)} more action items")


def test_the_overflow_names_the_desks_own_commands() -> None:
    commands = CommandNames(story="/desk-story", actionitems="/desk-items")
    message = batch(items(40), "C0X", commands)
    rest = overflow(message)
    assert rest is not None
    assert "`/desk-story <id>`" in rest and "`/desk-items`" in rest and "/story" not in rest


@pytest.mark.parametrize("hostile_id", ["<!channel>", "a&b `x` <https://evil|y>"])
def test_an_id_named_in_the_overflow_cannot_ping_or_link(hostile_id: str) -> None:
    crowd = items(40)
    last = crowd[-1].story.model_copy(update={"id": hostile_id})
    message = batch([*crowd[:-1], Item(last, WHY)], "C0X")
    rest = overflow(message)
    assert rest is not None and "<!" not in rest and "<https://evil" not in rest
    assert "&lt;" in rest


def renderer(tmp_path: Path) -> Renderer:
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    return Renderer(config, b"key")


def load(of: list[Item], parent: Any = None) -> Load:
    return Load([Entry(i.story.id, str(i.why), i.story.model_dump_json()) for i in of], parent)


@pytest.mark.parametrize("stored_as", ["batch", "digest"])  # digest: before migration 0009
def test_a_batch_row_renders_every_item_it_holds(tmp_path: Path, stored_as: str) -> None:
    # The delivery workers' path: an outbox row of 18 stories, as stored.
    eighteen = items(18)
    [(method, message)] = renderer(tmp_path).render(
        stored_as, "slack", "slack:C0SPACEOPS", None, load(eighteen), datetime.now(UTC))
    assert method == "chat.postMessage" and message["channel"] == "C0SPACEOPS"
    check_block_kit(message)
    assert len(listed_titles(message, eighteen)) == 18


def test_an_edit_of_a_large_batch_keeps_every_item_and_names_the_change(tmp_path: Path
                                                                         ) -> None:
    thirty = items(30)
    parent = SimpleNamespace(kind="batch", remote_id="1700000000.000100")
    calls = renderer(tmp_path).render(
        "update", "slack", "slack:C0X", {"story_id": thirty[-1].story.id,
                                         "qualifies": [True, True], "sources": [2, 3],
                                         "impact": [8, 8], "verdict": ""},
        load(thirty, parent), datetime.now(UTC))
    (update, edited), (post, reply) = calls
    assert edited["ts"] == reply["thread_ts"] == "1700000000.000100"
    assert (update, post) == ("chat.update", "chat.postMessage")
    check_block_kit(edited)
    listed = listed_titles(edited, thirty)
    rest = overflow(edited)
    assert rest is not None and len(listed) + len(re.findall(r"`item-\d+`", rest)) == 30
    assert thirty[-1].story.title in reply["blocks"][0]["text"]["text"]
