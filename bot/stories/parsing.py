"""Input → stories: one object, an array, {"stories": [...]} or JSON Lines.

A batch never fails as a whole because of one story: each bad story becomes a `Rejection` that
names its id (or position) and the offending field, and the rest goes on.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bot.stories.model import CONTROL_REASON, MAX_ID, MAX_STORY_BYTES, URL_REASON, Story


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


def _from_line(line: str) -> Story | None:
    """The fast path for one JSON line: pydantic decodes and validates it in one pass (a third
    of the cost of decoding, walking and validating it apart). None whenever anything is
    unusual; the line then takes the general path, which names what is wrong. Fewer than
    MAX_DEPTH brackets in all cannot nest deeper than MAX_DEPTH."""
    if line.count("{") + line.count("[") > MAX_DEPTH or len(line.encode()) > MAX_STORY_BYTES:
        return None
    try:
        return Story.model_validate_json(line)
    except ValidationError:
        return None


_ARRAY = TypeAdapter(list[Story])


def _from_array(text: str) -> list[Story] | None:
    """The fast path for a JSON array (a push): pydantic decodes and validates it in one pass,
    with no Python object per value before the stories. None whenever anything is unusual
    (an invalid story, a field we do not know, a body large enough for one story to be too
    large); the body then takes the general path, which names what is wrong per story.

    The general path's checks hold here without being made: a body of at most an eighth of
    MAX_STORY_BYTES cannot hold a story over it, however re-encoded (a character is at most 4
    bytes, and re-encoding at most doubles it with separators); and a story of known fields
    only nests 3 levels (story, list, source or timeline entry), so never deeper than
    MAX_DEPTH."""
    if len(text) * 8 > MAX_STORY_BYTES or not text.lstrip().startswith("["):
        return None
    try:
        stories = _ARRAY.validate_json(text)
    except (ValidationError, ValueError, RecursionError):
        return None
    for story in stories:
        if story.model_extra or any(part.model_extra for part in (*(story.sources or ()),
                                                                   *story.timeline)):
            return None
    return stories


def _form(text: str) -> tuple[Any, list[tuple[int, str]] | None]:
    """The input as one JSON document, or else as its numbered non-blank JSON lines (then the
    document is None); UnusableInput when it is neither."""
    try:
        return json.loads(text), None
    except RecursionError:
        raise UnusableInput(f"not usable JSON: {_TOO_DEEP}") from None
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(_json_lines(text), 1) if line.strip()]
        if len(lines) < 2:
            where = f"line {whole_error.lineno}"
            raise UnusableInput(f"not JSON: {whole_error.msg} at {where}") from None
        return None, lines


def _json_lines(text: str) -> list[str]:
    """JSON Lines split as the format says, at \\n (a \\r before it dropped). Not
    `str.splitlines`: it also splits at U+2028, U+2029, U+0085 and other separators, which
    JSON allows raw inside a string, so a title holding one was cut into two unusable lines
    and the story rejected."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _line_items(lines: list[tuple[int, str]]) -> Iterator[tuple[int, Any, int]]:
    """`_raw_items` for JSON lines."""
    for number, line in lines:
        story = _from_line(line)
        if story is not None:
            yield number, story, 0
            continue
        try:
            yield number, json.loads(line), len(line.encode())
        except json.JSONDecodeError as exc:
            yield number, exc, len(line.encode())
        except RecursionError:
            yield number, TooDeep(), len(line.encode())


def _raw_items(text: str) -> Iterator[tuple[int, Any, int]]:
    """Yield (position, decoded item or the error that stopped it, encoded size) per story."""
    document, lines = _form(text)
    return _line_items(lines) if lines is not None else _document_items(document, text)


def _document_items(document: Any, text: str) -> Iterator[tuple[int, Any, int]]:
    """`_raw_items` for one JSON document."""
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
        message = URL_REASON if loc and loc[-1] == "url" else CONTROL_REASON
    return ".".join(loc) or "story", message


def parse_story(position: int, item: Any, size: int) -> Story | Rejection:
    """Validate one decoded item into a Story, or explain why it is rejected."""
    if isinstance(item, Story):  # a JSON line that took the fast path
        return item
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


_deferring = threading.Lock()
YOUNG_DEFERRED = 20_000  # objects kept between young collections while a batch is handled
_deferred: list[tuple[int, int, int]] = []  # the thresholds to restore, while deferring


@contextmanager
def full_collections_deferred() -> Iterator[None]:
    """Let the garbage collector's young generations run, seldom, but not its full collections.

    A batch is thousands of long-lived objects (stories, their sources, rows): each survives
    the young collections and, once enough have, sets off a full one that walks them all, a
    few times per 10,000 stories (measured: 0.3–0.6 s of a 1.5–2.5 s ingest, ~25 %). The
    youngest generation is also collected less often (when YOUNG_DEFERRED more objects are
    kept than freed, not 700): a chunk's objects all survive, and ~300 young collections
    walking them, with a middle one every tenth, were ~0.07 s of ~0.8 s for 10,000 stories;
    1–2 collections remain. Cycles are still found young, a few MB later at most; what
    reaches the oldest generation waits for the first full collection after the batch.
    Nested and concurrent users (parsing runs in a thread for a large push) share one
    deferral: the thresholds come back when the last one leaves.
    """
    with _deferring:
        if not _deferred:
            _deferred.append(gc.get_threshold())
            young, middle, _ = _deferred[0]
            gc.set_threshold(max(young, YOUNG_DEFERRED), middle, 1_000_000)
        else:
            _deferred.append(_deferred[0])
    try:
        yield
    finally:
        with _deferring:
            restore = _deferred.pop()
            if not _deferred:
                gc.set_threshold(*restore)


def parse_batch(data: str | bytes) -> Batch:
    """Parse an object, an array, {"stories": [...]} or JSON Lines into stories and rejections."""
    with full_collections_deferred():
        return _parse_batch(data)


def _text(data: str | bytes) -> str:
    try:
        return data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"not UTF-8 text (byte {exc.start})") from None


def _outcomes(items: Iterator[tuple[int, Any, int]]) -> Batch:
    stories: list[Story] = []
    rejections: list[Rejection] = []
    for position, item, size in items:
        outcome = parse_story(position, item, size)
        (stories if isinstance(outcome, Story) else rejections).append(outcome)  # type: ignore[arg-type]
    return Batch(stories, rejections)


class Chunks:
    """An input parsed a chunk at a time: an iterator of Batches of at most `size` stories.

    Made for a pipeline that stores each chunk as it is parsed, so that a large file's stories
    are not all alive at once (`Pipeline.ingest`). JSON Lines are parsed `size` lines at a
    time; any other input is
    parsed whole on the first `next`. The input's form is settled here, so an unusable one
    fails (UnusableInput) before anything is stored. `read` counts the stories parsed so far.
    """

    def __init__(self, data: str | bytes, size: int = 1000) -> None:
        text = _text(data)
        self._whole: Callable[[], Batch] | None = None
        self._lines: list[tuple[int, str]] = []
        self._at = 0  # lines handed out so far
        self._size = size
        self.read = 0
        fast = _from_array(text)
        if fast is not None:
            self._whole = partial(Batch, fast, [])
        else:
            document, lines = _form(text)
            if lines is None:
                self._whole = partial(_outcomes, _document_items(document, text))
            else:
                self._lines = lines

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self._whole is not None:
            batch, self._whole = self._whole(), None
        elif self._at < len(self._lines):
            taken = self._lines[self._at : self._at + self._size]
            self._at += len(taken)
            batch = _outcomes(_line_items(taken))
        else:
            raise StopIteration
        self.read += len(batch.stories)
        return batch


def _parse_batch(data: str | bytes) -> Batch:
    text = _text(data)
    fast = _from_array(text)
    if fast is not None:
        return Batch(fast, [])
    return _outcomes(_raw_items(text))
