"""The shortcuts rendering takes (issue 14) give what the long way gives.

`fit_blocks` skips walking the blocks when a bound on their text is within the budget: the
bound must never be below the real total. Reasons are worded once per distinct reason: the
remembered words must be the words.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.messages.render import (
    MESSAGE_TEXT_BUDGET,
    Item,
    _rendered,
    _text_length,
    _texts,
    fit_blocks,
    item_context,
)
from bot.messages.templating import _words, why_words
from bot.rules.reasons import Clause, target_clause
from bot.stories.model import Story
from tests.conftest import story


def items(count: int, title: str) -> list[dict[str, Any]]:
    return [item_context(Item(Story.model_validate(story(
        id=f"s{n}", title=f"{title} {n}", key_takeaways=[title] * 3)), "impact 8 ≥ 8"))
        for n in range(count)]


def test_the_text_bound_is_never_below_the_block_text() -> None:
    for count, title in ((1, "Short"), (10, 'Quoted "&<>" \\ ü ' * 10), (40, "Long " * 60)):
        message, bound = _rendered("batch", items=items(count, title), rest=[], hidden=0,
                                   count=count, story_command="/story",
                                   actionitems_command="/actionitems")
        exact = sum(map(len, _texts(message["blocks"])))
        assert _text_length(message["blocks"]) == exact
        assert exact <= bound
        if count == 40:  # over the budget: the bound is the counted total, not the JSON's length
            assert bound == exact > MESSAGE_TEXT_BUDGET
            fitted = fit_blocks(json.loads(json.dumps(message["blocks"])), bound)
            assert fitted == fit_blocks(message["blocks"])
            assert sum(map(len, _texts(fitted))) <= MESSAGE_TEXT_BUDGET


def test_nested_texts_are_counted_as_the_recursive_walk_counts_them() -> None:
    blocks: list[Any] = [{"text": {"text": "abc", "x": [{"text": "de"}, "text", 5, None]}},
                         {"type": "t", "text": "fgh", "fields": [[{"text": "ij"}]]},
                         {"text": 7, "elements": ({"text": "no: a tuple"},)}]
    assert _text_length(blocks) == sum(map(len, _texts(blocks))) == 10


def test_remembered_reasons_are_the_words_of_the_reason() -> None:
    reasons: list[Any] = [
        [Clause("impact", {"value": 9, "min": 8, "ok": True}).data(),
         Clause("sources", {"value": 1, "min": 2, "ok": False}).data(),
         target_clause("route", "C0X", ["b", "a"], True).data()],
        [Clause("impact", {"value": 9.5, "min": 8, "ok": True}).data()],
        [Clause("too_old", {"hours": 2.25, "max_age": "1:00:00"}).data()],
        "an older release's reason <&>", "",
    ]
    for reason in reasons * 2:
        assert why_words(reason) == _words(reason)
    assert why_words(reasons[0]) != why_words(reasons[1])
    # Not JSON data (a datetime): worded directly, never remembered under another's key.
    odd = [{"is": "sources", "value": datetime(2026, 1, 1, tzinfo=UTC), "min": 2, "ok": True}]
    assert why_words(odd) == _words(odd)
