"""Log lines: text on a terminal, JSON objects elsewhere, with a decision's facts as keys."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def say(stream: io.StringIO) -> str:
    logs.setup(debug=False, service=True, stream=stream)
    logging.getLogger("bot.test").info("planned alert of s1 to slack:C1: why", extra=logs.fields(
        story_id="s1", route="slack:C1", reason="impact 9 ≥ 8", field=None))
    return stream.getvalue()


def test_a_file_or_pipe_gets_one_json_object_a_line_with_the_facts_as_keys() -> None:
    line = json.loads(say(io.StringIO()))
    assert line["message"] == "planned alert of s1 to slack:C1: why"
    assert (line["story_id"], line["route"], line["reason"]) == ("s1", "slack:C1", "impact 9 ≥ 8")
    assert "field" not in line and line["level"] == "info" and line["logger"] == "bot.test"


def test_a_terminal_gets_readable_text() -> None:
    text = say(Terminal())
    assert text.rstrip().endswith("INFO bot.test: planned alert of s1 to slack:C1: why")
    assert "{" not in text
