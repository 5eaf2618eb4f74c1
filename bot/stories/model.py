"""The scored story: its fields, their limits and how text in them is cleaned.

The story format is described in docs/stories.md; `bot.stories.parsing` turns input into
stories and named rejections.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
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
    model_validator,
)

MAX_STORY_BYTES = 1_000_000
MAX_ID = 200
MAX_TITLE = 1_000
MAX_TEXT = 100_000
MAX_ITEMS = 200
# Counts and versions are stored as INTEGER, 32 bits on PostgreSQL: a larger one was a 500.
MAX_INT = 2**31 - 1

# U+0000–U+001F and U+007F, except tab, LF and CR, which docs/stories.md allows (titles fold them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
URL_REASON = "must be an http(s) URL without spaces"
CONTROL_REASON = "contains a control character"


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
        if value in _SENTIMENTS:  # as the scorers write it, nearly always: skip the regex
            return value
        return re.sub(r"[-\s]+", "_", value.strip().lower())
    return value


_SENTIMENTS = frozenset(Sentiment)


def _no_controls(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(CONTROL_REASON)
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
    # A naive time is UTC (docs/stories.md).
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
    name = _outlet_name(outlet) if outlet else ""
    if not name and url:
        name = (urlsplit(url).hostname or "").lower()
    return name.removeprefix("www.") or None


@lru_cache(maxsize=4096)
def _outlet_name(outlet: str) -> str:
    """`outlet_key`'s reading of a written outlet, remembered: a desk's stories name a few
    dozen outlets, each parsed once per source of every story ingested."""
    name = outlet.strip().lower()
    if "://" in name:
        return urlsplit(name).hostname or ""
    if name and " " not in name and "." in name:
        return name.split("/", 1)[0]
    return name


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
    # A string where a list belongs is an error, not a list of characters (docs/stories.md).
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
    version: Annotated[StrictInt, Field(ge=0, le=MAX_INT)] | None = None
    verified_by: Annotated[StrictInt, Field(ge=0, le=MAX_INT)] | None = None
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

    @cached_property  # asked once per story and target at ingest; the model is frozen
    def topic_set(self) -> frozenset[str]:
        return frozenset(t.lower() for t in self.topics)
