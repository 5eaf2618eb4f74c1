"""Scored stories: the model of SPEC §3 and the parser that turns input into stories or rejections.

A batch never fails as a whole because of one story: each bad story becomes a `Rejection` that
names its id (or position) and the offending field, and the rest goes on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

MAX_STORY_BYTES = 1_000_000
MAX_ID = 200
MAX_TITLE = 1_000
MAX_TEXT = 100_000
MAX_ITEMS = 200

# U+0000–U+001F and U+007F, except tab, LF and CR, which SPEC §3 allows (titles fold them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_URL_REASON = "must be an http(s) URL without spaces"
_CONTROL_REASON = "contains a control character"


class Sentiment(StrEnum):
    VERY_NEGATIVE = "very_negative"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    VERY_POSITIVE = "very_positive"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def _sentiment(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"[-\s]+", "_", value.strip().lower())
    return value


def _no_controls(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(_CONTROL_REASON)
    return value


def _required(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _one_line(value: str) -> str:
    return _LINE_BREAKS.sub(" ", _no_controls(value)).strip()


def _printable_id(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be printable text")
    return _required(value)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 date-time") from None
    # A naive time is UTC (SPEC §3).
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# Most text is checked by pydantic-core's Rust regex engine rather than a Python call per string:
# a story has dozens of strings and a 10,000-story file hundreds of thousands.
_NO_CONTROLS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_HTTP_URL = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$"

StrictText = Annotated[str, Field(strict=True)]
Text = Annotated[StrictText, Field(max_length=MAX_TEXT, pattern=_NO_CONTROLS)]
Url = Annotated[StrictText, Field(max_length=MAX_TEXT, pattern=_HTTP_URL)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Number = StrictInt | StrictFloat


def outlet_key(outlet: str | None, url: str | None) -> str | None:
    """Name an outlet the way corroboration counts it: lower-case host or name, no `www.`.

    `FT.com`, `ft.com` and `https://www.ft.com/content/x` are one outlet; a source without an
    outlet is known by its URL's host.
    """
    name = (outlet or "").strip().lower()
    if "://" in name:
        name = urlsplit(name).hostname or ""
    elif name and " " not in name and "." in name:
        name = name.split("/", 1)[0]
    if not name and url:
        name = (urlsplit(url).hostname or "").lower()
    return name.removeprefix("www.") or None


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, str_max_length=MAX_TEXT)


class Source(_Part):
    outlet: Text | None = None
    title: Text | None = None
    url: Url | None = None
    published_at: Text | None = None

    @property
    def key(self) -> str | None:
        return outlet_key(self.outlet, self.url)

    @property
    def display(self) -> str:
        return (self.outlet or self.key or "unknown outlet").strip()


class TimelineEntry(_Part):
    date: Text
    event: Text


def _is_list(value: Any) -> Any:
    # A string where a list belongs is an error, not a list of characters (SPEC §3).
    if value is not None and not isinstance(value, list):
        raise ValueError("must be a list")
    return value


T = TypeVar("T")
Items = Annotated[tuple[T, ...], Field(max_length=MAX_ITEMS), BeforeValidator(_is_list)]


class Story(BaseModel):
    """One scored story, validated and normalised. Unknown fields are kept and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Annotated[StrictText, Field(max_length=MAX_ID), AfterValidator(_printable_id)]
    url: Url
    title: Annotated[StrictText, Field(max_length=MAX_TITLE), AfterValidator(_one_line),
                     AfterValidator(_required)]  # one line: CR, LF, tab become spaces
    scored_at: Timestamp
    impact: Annotated[Number, Field(ge=1, le=10)]
    sentiment: Annotated[Sentiment, BeforeValidator(_sentiment)]
    version: Annotated[StrictInt, Field(ge=0)] | None = None
    verified_by: Annotated[StrictInt, Field(ge=0)] | None = None
    sources: Items[Source] | None = None
    beat: Text | None = None
    topics: Items[Text] = ()
    key_takeaways: Items[Text] = ()
    key_facts: Items[Text] = ()
    affected: Items[Text] = ()
    analysis: Text | None = None
    what_to_watch: Text | None = None
    timeline: Items[TimelineEntry] = ()

    @model_validator(mode="after")
    def _corroborated(self) -> Story:
        if self.sources is None and self.verified_by is None:
            raise ValueError("needs `sources` or `verified_by`")
        return self

    @property
    def topic_set(self) -> frozenset[str]:
        return frozenset(t.lower() for t in self.topics)


@dataclass(frozen=True)
class Rejection:
    """A story that could not be accepted, and why."""

    position: int  # 1-based place in its input (line number for JSON Lines)
    story_id: str | None
    field: str
    reason: str

    def describe(self) -> str:
        who = f"story {self.story_id!r}" if self.story_id else f"story #{self.position}"
        return f"{who}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Batch:
    stories: list[Story]
    rejections: list[Rejection]


class UnusableInput(ValueError):
    """The input as a whole is not JSON, an array, {"stories": [...]} or JSON Lines."""


class TooDeep(Exception):
    """JSON nested deeper than the reader follows (Python's recursion limit, ~1,000 levels)."""


_TOO_DEEP = "nested too deeply (over ~1,000 levels)"
MAX_DEPTH = 32  # a story nests 3 levels; unknown fields are kept, and must stay storable


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest deeper than `limit` (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def _raw_items(text: str) -> Iterator[tuple[int, Any, int]]:
    """Yield (position, decoded item or the error that stopped it, encoded size) per story."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise UnusableInput(f"not usable JSON: {_TOO_DEEP}") from None
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            where = f"line {whole_error.lineno}"
            raise UnusableInput(f"not JSON: {whole_error.msg} at {where}") from None
        for number, line in lines:
            try:
                yield number, json.loads(line), len(line.encode())
            except json.JSONDecodeError as exc:
                yield number, exc, len(line.encode())
            except RecursionError:
                yield number, TooDeep(), len(line.encode())
        return
    if isinstance(document, dict) and isinstance(document.get("stories"), list):
        document = document["stories"]
    items = document if isinstance(document, list) else [document]
    for position, item in enumerate(items, 1):
        try:
            size = (len(json.dumps(item, ensure_ascii=False).encode()) if len(items) > 1
                    else len(text))
        except RecursionError:
            yield position, TooDeep(), 0
            continue
        yield position, item, size


def _field_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    # Drop pydantic's type tags such as 'int' / 'float' from union members.
    loc = [p for p in loc if p not in ("int", "float", "str", "tuple[...]")]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "string_pattern_mismatch":
        message = _URL_REASON if loc and loc[-1] == "url" else _CONTROL_REASON
    return ".".join(loc) or "story", message


def parse_story(position: int, item: Any, size: int) -> Story | Rejection:
    """Validate one decoded item into a Story, or explain why it is rejected."""
    story_id = item.get("id") if isinstance(item, dict) else None
    story_id = story_id[:MAX_ID] if isinstance(story_id, str) else None
    if isinstance(item, json.JSONDecodeError):
        return Rejection(position, None, "json", f"not JSON: {item.msg}")
    if isinstance(item, TooDeep):
        return Rejection(position, None, "json", _TOO_DEEP)
    if not isinstance(item, dict):
        return Rejection(position, None, "story", "must be a JSON object")
    if size > MAX_STORY_BYTES:
        return Rejection(position, story_id, "story", f"larger than {MAX_STORY_BYTES:,} bytes")
    if _deeper_than(item, MAX_DEPTH):
        return Rejection(position, story_id, "story", f"nested deeper than {MAX_DEPTH} levels")
    if item.get("sources") is None and item.get("verified_by") is None:
        return Rejection(position, story_id, "sources", "needs `sources` or `verified_by`")
    try:
        return Story.model_validate(item)
    except ValidationError as exc:
        field, reason = _field_of(exc)
        if field == "impact":  # pydantic speaks of int/float unions; say what the desk means
            reason = f"must be a number from 1 to 10, not {json.dumps(item.get('impact'))[:40]}"
        return Rejection(position, story_id, field, reason)


def parse_batch(data: str | bytes) -> Batch:
    """Parse an object, an array, {"stories": [...]} or JSON Lines into stories and rejections."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"not UTF-8 text (byte {exc.start})") from None
    stories: list[Story] = []
    rejections: list[Rejection] = []
    for position, item, size in _raw_items(text):
        outcome = parse_story(position, item, size)
        (stories if isinstance(outcome, Story) else rejections).append(outcome)  # type: ignore[arg-type]
    return Batch(stories, rejections)
