"""docs/stories.md: what a story is, and how bad input is rejected by name and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.stories.model import Story, outlet_key
from bot.stories.parsing import Chunks, Rejection, UnusableInput, parse_batch, parse_story
from tests.conftest import story

CONTROL = "\x07"


def without(key: str) -> dict[str, Any]:
    data = story(id=f"no-{key}")
    del data[key]
    return data


# (case name, payload, expected field) — each a different kind of invalid story.
INVALID: list[tuple[str, Any, str]] = [
    ("impact 0", story(id="i0", impact=0), "impact"),
    ("impact 11", story(id="i11", impact=11), "impact"),
    ("impact as text", story(id="itext", impact="8"), "impact"),
    ("impact as boolean", story(id="ibool", impact=True), "impact"),
    ("missing id", without("id"), "id"),
    ("empty id", story(id="  "), "id"),
    ("id too long", story(id="x" * 201), "id"),
    ("missing title", without("title"), "title"),
    ("missing url", without("url"), "url"),
    ("url not http", story(id="ftp", url="ftp://desk.example/a"), "url"),
    ("url with a space", story(id="space", url="https://desk.example/a b"), "url"),
    ("source url without a host", story(id="srcurl", sources=[{"url": "https:///x"}]),
     "sources.0.url"),
    ("unknown sentiment", story(id="sent", sentiment="ecstatic"), "sentiment"),
    ("title of 10 MB", story(id="huge", title="t" * 10_000_000), "story"),
    ("title over 1,000 chars", story(id="long", title="t" * 1001), "title"),
    ("control character in title", story(id="ctl", title=f"bell{CONTROL}"), "title"),
    ("control character in a key fact", story(id="ctlf", key_facts=["ok", f"x{CONTROL}"]),
     "key_facts.1"),
    ("string where a list belongs", story(id="topics", topics="launch"), "topics"),
    ("no sources nor verified_by", story(id="nosrc", sources=None), "sources"),
    ("scored_at not a date", story(id="when", scored_at="yesterday"), "scored_at"),
    ("scored_at a number", story(id="epoch", scored_at=1700000000), "scored_at"),
    ("negative verified_by", story(id="vb", verified_by=-1), "verified_by"),
    ("verified_by beyond 32 bits", story(id="vbig", verified_by=2**31), "verified_by"),
    ("version beyond 32 bits", story(id="vers", version=2**63), "version"),
    ("too many key facts", story(id="many", key_facts=["f"] * 201), "key_facts"),
    ("source outlet not text", story(id="so", sources=[{"outlet": 5}]), "sources.0.outlet"),
    ("timeline entry without event", story(id="tl", timeline=[{"date": "2026-01-01"}]),
     "timeline.0.event"),
    ("not an object", ["a", "list"], "story"),
]


@pytest.mark.parametrize(("case", "payload", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_it_rejects_each_kind_of_bad_story_naming_the_field(case: str, payload: Any,
                                                            field: str) -> None:
    outcome = parse_story(3, payload, len(json.dumps(payload)))
    assert isinstance(outcome, Rejection), case
    assert outcome.field == field
    assert outcome.position == 3
    if isinstance(payload, dict) and isinstance(payload.get("id"), str):
        assert outcome.story_id == payload["id"][:200]
        assert payload["id"][:20] in outcome.describe()


@pytest.mark.parametrize("impact", [0, 11, "8", True, None])
def test_a_bad_impact_says_what_is_wanted(impact: object) -> None:
    rejection = parse_story(1, story(impact=impact), 100)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("must be a number from 1 to 10, not ")


def test_a_bad_story_does_not_stop_the_rest_of_its_batch() -> None:
    good = [story(id=f"good-{n}") for n in range(10)]
    bad = [payload for _, payload, _ in INVALID]
    batch = parse_batch(json.dumps(good[:5] + bad + good[5:]))
    assert [s.id for s in batch.stories] == [f"good-{n}" for n in range(10)]
    assert len(batch.rejections) == len(INVALID)
    assert {r.position for r in batch.rejections} == set(range(6, 6 + len(INVALID)))


def test_a_title_is_one_line_and_multiline_fields_keep_their_breaks() -> None:
    parsed = Story.model_validate(story(title="Line one\r\nline\ttwo", analysis="a\nb"))
    assert parsed.title == "Line one line two"
    assert parsed.analysis == "a\nb"


@pytest.mark.parametrize("given", ["Very-Negative", "very negative", "VERY_NEGATIVE"])
def test_sentiment_is_case_insensitive_and_accepts_dashes_and_spaces(given: str) -> None:
    assert Story.model_validate(story(sentiment=given)).sentiment == "very_negative"


def test_a_naive_time_is_utc_and_unknown_fields_are_kept() -> None:
    parsed = Story.model_validate(story(scored_at="2026-03-05T14:10:00", desk_note="keep"))
    assert parsed.scored_at.isoformat() == "2026-03-05T14:10:00+00:00"
    assert parsed.model_dump()["desk_note"] == "keep"


@pytest.mark.parametrize(("outlet", "url", "key"), [
    ("FT.com", None, "ft.com"),
    ("ft.com", None, "ft.com"),
    ("https://www.ft.com/content/abc", None, "ft.com"),
    (None, "https://www.ft.com/content/abc", "ft.com"),
    ("Seeking Alpha", "https://seekingalpha.com/x", "seeking alpha"),
    ("www.Reuters.com", None, "reuters.com"),
])
def test_outlets_compare_by_name_or_host_without_www(outlet: str | None, url: str | None,
                                                     key: str) -> None:
    assert outlet_key(outlet, url) == key


@pytest.mark.parametrize("shape", ["object", "array", "stories", "jsonl"])
def test_it_reads_every_input_shape(shape: str) -> None:
    items = [story(id="a"), story(id="b")]
    text = {
        "object": json.dumps(items[0]),
        "array": json.dumps(items),
        "stories": json.dumps({"stories": items}),
        "jsonl": "\n".join(json.dumps(i) for i in items) + "\n",
    }[shape]
    expected = ["a"] if shape == "object" else ["a", "b"]
    assert [s.id for s in parse_batch(text).stories] == expected


def test_a_bad_json_line_is_one_rejection_by_line_number() -> None:
    text = json.dumps(story(id="a")) + "\n{not json\n" + json.dumps(story(id="c"))
    batch = parse_batch(text)
    assert [s.id for s in batch.stories] == ["a", "c"]
    assert batch.rejections[0].position == 2
    assert batch.rejections[0].field == "json"


@pytest.mark.parametrize("data", [b"nope", b"", b"\xff\xfe garbage"])
def test_input_that_is_not_json_at_all_is_unusable(data: bytes) -> None:
    with pytest.raises(UnusableInput):
        parse_batch(data)


def _general(text: str) -> list[Any]:
    """What the general path makes of an array: one story at a time, as before issue 14."""
    return [parse_story(n, item, len(json.dumps(item).encode()))
            for n, item in enumerate(json.loads(text), 1)]


@pytest.mark.parametrize("odd", [
    {},  # nothing odd: the fast path takes it
    {"extra": {"kept": [1, 2]}},  # an unknown field: kept, and its depth must be checked
    {"sources": [{"outlet": "A", "note": [[["deep"]]]}]},  # an unknown field in a source
    {"impact": 11},  # invalid: the general path names it
    {"title": [[["x"]]]},
])
def test_a_pushed_array_parses_as_one_story_at_a_time_would(odd: dict[str, Any]) -> None:
    """A pushed JSON array is validated in one pass (issue 14), with the same outcome as the
    general path: the same stories, and the same rejections for the odd one."""
    items = [story(id="a"), story(id="b", **odd), story(id="c", topics=["Cyber"])]
    text = json.dumps(items)
    batch = parse_batch(text)
    expected = _general(text)
    assert batch.stories == [s for s in expected if isinstance(s, Story)]
    assert batch.rejections == [r for r in expected if isinstance(r, Rejection)]
    assert [s.model_extra for s in batch.stories] == [
        s.model_extra for s in expected if isinstance(s, Story)]


def test_a_story_nested_too_deep_in_an_unknown_field_is_still_rejected_from_an_array() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    batch = parse_batch(json.dumps([story(id="a"), story(id="b", extra=deep)]))
    assert [s.id for s in batch.stories] == ["a"]
    assert [(r.story_id, r.field) for r in batch.rejections] == [("b", "story")]
    assert "nested deeper" in batch.rejections[0].reason


@pytest.mark.parametrize("shape", ["object", "array", "stories", "jsonl"])
def test_chunks_hold_what_parse_batch_holds_a_chunk_at_a_time(shape: str) -> None:
    """The file source's `Chunks`: the same stories and rejections (line numbers of the whole
    file) as `parse_batch`, JSON Lines in chunks of `size` lines, other shapes whole."""
    items: list[Any] = [story(id=f"s{n}") for n in range(7)]
    items[3] = {"id": "bad", "impact": 3}
    text = {
        "object": json.dumps(items[0]),
        "array": json.dumps(items),
        "stories": json.dumps({"stories": items}),
        "jsonl": "\n".join(json.dumps(i) for i in items[:5]) + "\n{not json\n\n"
                 + "\n".join(json.dumps(i) for i in items[5:]),
    }[shape]
    whole = parse_batch(text)
    chunks = Chunks(text.encode(), size=2)
    parts = list(chunks)
    assert [s for part in parts for s in part.stories] == whole.stories
    assert [r for part in parts for r in part.rejections] == whole.rejections
    if shape == "jsonl":  # 8 non-blank lines, 2 at a time
        assert [len(part.stories) + len(part.rejections) for part in parts] == [2, 2, 2, 2]
    else:
        assert len(parts) == 1
    assert chunks.read == len(whole.stories)
    if shape == "jsonl":
        assert [r.position for r in whole.rejections] == [4, 6]


@pytest.mark.parametrize("data", [b"nope", b"", b"\xff\xfe garbage", b"[1, 2"])
def test_chunks_of_an_unusable_input_fail_before_any_is_parsed(data: bytes) -> None:
    with pytest.raises(UnusableInput):
        Chunks(data)
