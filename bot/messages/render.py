"""Templates own all wording: Jinja2 renders Slack Block Kit JSON and email parts.

Code builds a flat context (`item_context`); templates under `templates/` say the words. The
Slack environment JSON-escapes every expression, so a template cannot emit broken JSON, and the
`mrkdwn` filter escapes `&`, `<`, `>` (Slack's only control characters) in untrusted text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.messages.templating import (
    SECTION_LIMIT,
    Why,
    clip,
    email_env,
    mrkdwn,
    slack_env,
    slack_url,
    templates_dir,
)
from bot.rules.gate import Corroboration, corroborate, figure
from bot.settings import CommandNames
from bot.stories.model import Story

HEADER_LIMIT = 150
MAX_BLOCKS = 50
MESSAGE_TEXT_BUDGET = 10_000  # Slack rejects ~11–13k chars of block text (msg_blocks_too_long)
LINK_LIMIT = 2000  # longer story URLs are shown unlinked rather than broken
# Characters of story ids a digest may name after the items it lists in full: a section holds
# 3000, and the rest of the ~10k budget is for the listed items.
REST_LIMIT = 2500

__all__ = ["Item", "Why", "email_env", "item_context", "page_env", "slack_blocks", "templates_dir"]


@cache
def page_env() -> Environment:
    """HTML pages the HTTP server shows people (unsubscribe); autoescaped."""
    return Environment(loader=FileSystemLoader(templates_dir() / "web"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined)


@dataclass(frozen=True)
class Item:
    """One story in a message, with the reason it was sent there."""

    story: Story
    why: Why
    downgraded: Why | None = None  # why it is no longer an action item, once re-scored below
    alerted: bool = False  # already sent to this reader as an instant email (daily digests)
    owner: dict[str, Any] | None = None  # its action-item state (state, by, at, note, reason)
    # `corroborate(story)`, when the caller has it already (`Renderer.item`): not counted twice.
    corroboration: Corroboration | None = None


def item_context(item: Item) -> dict[str, Any]:
    """A flat, template-friendly view of one story (raw text: templates escape for their medium)."""
    story = item.story
    corroboration = item.corroboration
    if corroboration is None:
        corroboration = corroborate(story)
    return {
        "id": story.id,
        "title": story.title,
        "url": story.url,
        # Measured as Slack gets it (`&` → `&amp;`): a linked title of 900 characters then
        # still fits a 3000-character section whole, and a clipped link is never sent.
        "link": story.url if len(slack_url(story.url)) <= LINK_LIMIT else None,
        "impact": figure(story.impact),
        "sentiment": story.sentiment.label,
        "sources": corroboration.count,
        "outlets": ", ".join(corroboration.outlets),
        "takeaways": list(story.key_takeaways[:3]),
        "key_facts": list(story.key_facts),
        # What a digest shows of a story: its first key facts, else its takeaways.
        "highlights": list(story.key_facts[:3] or story.key_takeaways[:3]),
        "topics": ", ".join(story.topics),
        "scored_at": story.scored_at,  # a UTC datetime: templates say it
        "why": item.why,
        "downgraded": item.downgraded,
        "alerted": item.alerted,
        "owner": item.owner,
    }


def _texts(node: Any) -> list[str]:
    """Every `text` string in a Block Kit structure, however deep."""
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    return []


def _text_length(node: Any) -> int:
    """`sum(map(len, _texts(node)))`, walked with a stack: a third of the recursion's cost."""
    total = 0
    stack = [node]
    while stack:
        found = stack.pop()
        if isinstance(found, dict):
            text = found.get("text")
            if isinstance(text, str):
                total += len(text)
            stack.extend(found.values())
        elif isinstance(found, list):
            stack.extend(found)
    return total


def _text_bound(blocks: list[dict[str, Any]], size: int | None) -> int:
    """At least the blocks' total text: `size` when that is within the budget, else exact."""
    return size if size is not None and size <= MESSAGE_TEXT_BUDGET else _text_length(blocks)


def fit_blocks(blocks: list[dict[str, Any]], size: int | None = None) -> list[dict[str, Any]]:
    """Enforce Block Kit's limits as a last guard; templates already stay well inside them.

    `size`: at least the blocks' total text, when known: the length of the JSON text they
    were read from (each block text is a JSON string of its own in there, at least as long as
    its value), or a total counted before. Within the budget, the blocks are not walked.
    """
    blocks = blocks[:MAX_BLOCKS]
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            limit = HEADER_LIMIT if block.get("type") == "header" else SECTION_LIMIT
            text["text"] = clip(text["text"], limit)  # only ever shorter
    if size is not None and size <= MESSAGE_TEXT_BUDGET:
        return blocks
    while len(blocks) > 1 and _text_length(blocks) > MESSAGE_TEXT_BUDGET:
        blocks.pop(-2)  # keep the closing context line, drop the last story above it
    return blocks


def fits(blocks: list[dict[str, Any]], size: int | None = None) -> bool:
    """Within Slack's whole-message limits: the block count and the total block text.
    `size`: as for `fit_blocks`."""
    return len(blocks) <= MAX_BLOCKS and _text_bound(blocks, size) <= MESSAGE_TEXT_BUDGET


class _TextCount:
    """A `json.loads` object hook adding up every object's `text` string as it is read: one
    call an object, where walking the result afterwards visits every value."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, found: dict[str, Any]) -> dict[str, Any]:
        text = found.get("text")
        if isinstance(text, str):
            self.total += len(text)
        return found


def _rendered(template: str, **context: Any) -> tuple[dict[str, Any], int]:
    """templates/slack/<template>.json.j2 read as JSON, and at least its blocks' total text
    (`fit_blocks`'s `size`): every object's text but the message's own, or the length of the
    JSON text, whichever is smaller."""
    text = slack_env().get_template(f"{template}.json.j2").render(**context)
    message: dict[str, Any]
    if len(text) <= MESSAGE_TEXT_BUDGET:  # small enough as it is: nothing to count
        try:
            message = orjson.loads(text)  # ~4 µs against json's ~15 for an alert
        except orjson.JSONDecodeError:  # e.g. a lone surrogate (not UTF-8): json reads it
            message = json.loads(text)
        return message, len(text)
    counted = _TextCount()
    message = json.loads(text, object_hook=counted)
    own = message.get("text") if isinstance(message, dict) else None
    return message, min(len(text), counted.total - (len(own) if isinstance(own, str) else 0))


def _render(template: str, **context: Any) -> dict[str, Any]:
    return _rendered(template, **context)[0]


def _finish(message: dict[str, Any], size: int | None = None) -> dict[str, Any]:
    message["blocks"] = fit_blocks(message["blocks"], size)
    message["text"] = clip(message["text"], SECTION_LIMIT)
    return message


def slack_blocks(template: str, **context: Any) -> dict[str, Any]:
    """Render templates/slack/<template>.json.j2 to `text` and `blocks`, inside Slack's limits."""
    return _finish(*_rendered(template, **context))


def slack_view(template: str, **context: Any) -> dict[str, Any]:
    """Render a modal (`views.open`) from templates/slack/<template>.json.j2, as written."""
    return _render(template, **context)


def _named(ids: Sequence[str]) -> list[str]:
    """The leading ids that fit in the overflow section's share of the message (REST_LIMIT)."""
    named: list[str] = []
    used = 0
    for story_id in ids:
        used += len(mrkdwn(story_id, 200)) + 5  # the code span's backticks and " · "
        if used > REST_LIMIT:
            break
        named.append(story_id)
    return named


def _listing(template: str, views: list[dict[str, Any]], listed: int,
             commands: CommandNames) -> tuple[dict[str, Any], int]:
    """`template` listing the first `listed` items in full and naming the rest by id, and the
    length of its JSON text."""
    rest = _named([v["id"] for v in views[listed:]])
    return _rendered(template, items=views[:listed], rest=rest,
                     hidden=len(views) - listed - len(rest), count=len(views),
                     story_command=commands.story, actionitems_command=commands.actionitems)


def _posted(message: dict[str, Any], size: int, channel: str) -> dict[str, Any]:
    message = _finish(message, size)
    message.update(channel=channel, unfurl_links=False, unfurl_media=False)
    return message


def slack_message(template: str, items: Sequence[Item], channel: str,
                  commands: CommandNames | None = None) -> dict[str, Any]:
    """Render templates/slack/<template>.json.j2 for `items` as chat.postMessage arguments."""
    views = [item_context(item) for item in items]
    return _posted(*_listing(template, views, len(views), commands or CommandNames()), channel)


def slack_listing(template: str, items: Sequence[Item], channel: str,
                  commands: CommandNames | None = None) -> dict[str, Any]:
    """`slack_message` for a message listing many items (a batch).

    It lists every item in full while the message fits Slack's limits (50 blocks, ~10k
    characters of block text); past that it lists as many as fit and names the rest by id,
    so that each one can still be opened (`/story <id>`), rather than dropping them.
    """
    commands = commands or CommandNames()
    views = [item_context(item) for item in items]
    message, size = _listing(template, views, len(views), commands)
    # Counted once: when it fits, `fit_blocks` then has nothing to count.
    size = _text_bound(message["blocks"], size)
    if len(message["blocks"]) > MAX_BLOCKS or size > MESSAGE_TEXT_BUDGET:  # not `fits`
        # The most items listed in full that still fit: a binary search, ~log2(n) renders,
        # only for the rare message too large to list whole.
        fitting, too_many = 0, len(views)
        message, size = _listing(template, views, 0, commands)
        while too_many - fitting > 1:
            middle = (fitting + too_many) // 2
            candidate, candidate_size = _listing(template, views, middle, commands)
            if fits(candidate["blocks"], candidate_size):
                fitting, message, size = middle, candidate, candidate_size
            else:
                too_many = middle
    return _posted(message, size, channel)


def slack_thread_reply(template: str, channel: str, thread_ts: str, **context: Any
                       ) -> dict[str, Any]:
    """chat.postMessage arguments for a reply in a message's thread."""
    reply = slack_blocks(template, **context)
    reply.update(channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False)
    return reply


def story_context(story: Story, versions: Sequence[Any], alerted: Sequence[Any]
                  ) -> dict[str, Any]:
    """Everything `/story` shows: the item view plus sources, timeline and score history."""
    view = item_context(Item(story, ""))
    view.update(
        takeaways=list(story.key_takeaways),
        affected=", ".join(story.affected),
        what_to_watch=story.what_to_watch or "",
        sources_list=[{"outlet": s.display, "title": s.title or "", "date": s.published_at or "",
                       "link": s.url if s.url and len(s.url) <= LINK_LIMIT else None}
                      for s in story.sources or ()],
        timeline=[{"date": t.date, "event": t.event} for t in story.timeline],
        # Times are UTC datetimes (`at` None: not sent yet); the template says them.
        history=[{"version": "-" if v.version is None else v.version,
                  "impact": figure(v.impact), "sources": v.corroboration,
                  "qualifies": v.qualifies, "at": v.received_at}
                 for v in versions],
        alerted=[{"where": a.target.partition(":")[2], "status": a.status, "at": a.sent_at}
                 for a in alerted],
    )
    return view


def owner_line(owner: dict[str, Any]) -> str:
    """Who owns an action item, as mrkdwn (templates/slack/parts/owner_line.j2, escaped there)."""
    # The Slack environment JSON-escapes each {{ }}; read the line back as the JSON string it is.
    text = slack_env().get_template("parts/owner_line.j2").render(owner=owner).strip()
    return str(json.loads(f'"{text}"'))
