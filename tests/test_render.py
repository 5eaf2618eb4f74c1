"""Untrusted story text lands escaped in Slack mrkdwn, HTML and email headers; limits hold."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from bot.messages.kinds import KINDS
from bot.messages.mail import Merge, address, compose, render_parts
from bot.messages.render import (
    HEADER_LIMIT,
    MESSAGE_TEXT_BUDGET,
    SECTION_LIMIT,
    Item,
    _texts,
    slack_blocks,
    slack_message,
    story_context,
)
from bot.messages.templating import clip, escape_mrkdwn
from bot.settings import CommandNames, Settings
from bot.stories.model import Story
from bot.transports import Outgoing
from tests.conftest import story

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|click> <script>alert(1)</script> &amp; <@U123>"


def hostile_item() -> Item:
    # The title arrives with CR/LF and a Bcc line; the parser folds it to one line.
    parsed = Story.model_validate(story(
        id="evil", title=f"{HOSTILE}\r\nBcc: victim@example.com",
        key_takeaways=[HOSTILE], key_facts=[HOSTILE],
        sources=[{"outlet": "<!here>", "url": "https://a.example/x"},
                 {"outlet": "B & <b>", "url": "https://b.example/y"}],
    ))
    return Item(parsed, "impact 8 ≥ 8")


def every_text(message: dict[str, Any]) -> list[str]:
    return [message["text"], *_texts(message["blocks"])]


@pytest.mark.parametrize("kind", ["alert", "batch"])
def test_slack_text_cannot_ping_or_link(kind: str) -> None:
    message = KINDS[kind].slack([hostile_item()], "C0SPACEOPS", CommandNames())
    for text in every_text(message):
        assert "<!" not in text
        assert "<https://evil" not in text
        assert "<@" not in text
        assert "<script" not in text
    joined = "\n".join(every_text(message))
    assert "&lt;!channel&gt;" in joined
    assert "&amp;amp;" in joined  # a literal "&amp;" stays literal
    assert "&lt;!here&gt;" in joined
    assert message["unfurl_links"] is False and message["unfurl_media"] is False


def test_the_only_link_in_an_alert_is_the_story_url() -> None:
    message = slack_message("alert", [hostile_item()], "C0SPACEOPS")
    title = message["blocks"][0]["text"]["text"]
    assert title.startswith("*<https://desk.example/s/evil|")
    # One `<`, ours; a `|` inside the escaped label cannot start a second link.
    assert title.count("<") == 1 and title.count(">") == 1 and title.endswith(">*")


def test_an_alert_has_the_facts_buttons_and_why_it_fired() -> None:
    parsed = Story.model_validate(story(impact=9))
    message = slack_message("alert", [Item(parsed, "impact 9 ≥ 8 · route C0X")], "C0X")
    controls = next(b for b in message["blocks"] if b["type"] == "actions")
    buttons = controls["elements"]
    assert [b.get("text", b.get("placeholder"))["text"] for b in buttons] == [
        "Claim", "Done", "Snooze", "Not relevant", "Key facts", "Open story"]
    # The block names the story; the snooze options say only the choice (Slack's 150 cap).
    assert controls["block_id"] == f"item:{parsed.id}"
    assert [o["value"] for o in buttons[2]["options"]] == ["1h", "4h", "tomorrow"]
    assert buttons[-1]["url"] == parsed.url
    assert message["blocks"][-1]["elements"][0]["text"] == "Why: impact 9 ≥ 8 · route C0X"
    fields = message["blocks"][1]["fields"]
    assert fields[0]["text"] == "*Impact*\n9/10"
    assert "SpaceNews, Reuters" in fields[2]["text"]


def biggest_story(n: int) -> Item:
    ampersands = "&" * 1000  # each escapes to five characters
    return Item(Story.model_validate(story(
        id=f"big-{n}", title=ampersands, key_takeaways=["t" * 100_000] * 200,
        sources=[{"outlet": f"{'o' * 900} {k}", "url": f"https://o{k}.example"}
                 for k in range(200)],
    )), "r" * 5000)


def test_a_batch_of_the_largest_stories_stays_inside_block_kit_limits() -> None:
    big = biggest_story(0)  # copied, not validated 50 times (seconds)
    items = [Item(big.story.model_copy(update={"id": f"big-{n}",
                                               "url": f"https://desk.example/s/big-{n}"}),
                  big.why) for n in range(50)]
    message = KINDS["batch"].slack(items, "C0X", CommandNames())
    assert len(message["blocks"]) <= 50
    assert sum(len(t) for t in _texts(message["blocks"])) <= MESSAGE_TEXT_BUDGET
    assert message["blocks"][0]["text"]["text"] == "50 new action items"
    for block in message["blocks"]:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= (HEADER_LIMIT if block["type"] == "header" else SECTION_LIMIT)
    # The largest stories fill the budget sooner: those not listed are named by id.
    listed = [b for b in message["blocks"] if "desk.example/s/big-" in b.get("text", {}).get(
        "text", "")]
    rest = message["blocks"][-2]["text"]["text"]
    assert 0 < len(listed) < 50 and rest.startswith(f"*{50 - len(listed)} more action items")
    assert all(f"`big-{n}`" in rest for n in range(len(listed), 50))
    json.dumps(message)  # still valid JSON after every cut


def test_an_alert_of_the_largest_story_stays_inside_block_kit_limits() -> None:
    message = slack_message("alert", [biggest_story(0)], "C0X")
    assert sum(len(t) for t in _texts(message["blocks"])) <= MESSAGE_TEXT_BUDGET
    for field in message["blocks"][1]["fields"]:
        assert len(field["text"]) <= 2000


def test_clipping_never_cuts_an_entity_in_half() -> None:
    # "aaaaaaaa&amp;&amp;&amp;" cut at 11 would end "&am": the partial entity is dropped.
    assert clip(escape_mrkdwn("a" * 8 + "&&&"), 12) == "aaaaaaaa…"
    assert clip(escape_mrkdwn("a" * 8 + "&&&"), 15) == "aaaaaaaa&amp;…"
    assert clip("short", 12) == "short"


def render_email(item: Item) -> EmailMessage:
    settings = Settings.model_validate({"public_url": "https://alerts.desk.example"})
    raw = compose("alert", [item], "reader@desk.example", settings, b"k", NOW)
    return email.message_from_bytes(bytes(raw), policy=policy.default)  # type: ignore[return-value]


def test_an_email_title_cannot_add_a_header() -> None:
    message = render_email(hostile_item())
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    assert str(message["Subject"]).startswith("[Action item] <!channel>")


def test_html_email_escapes_story_text_and_text_part_keeps_it_readable() -> None:
    message = render_email(hostile_item())
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&amp;amp;" in html
    assert "<script>alert(1)</script>" in text  # plain text is not HTML


def test_an_email_carries_one_click_unsubscribe_headers() -> None:
    message = render_email(Item(Story.model_validate(story()), "why"))
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://alerts.desk.example/unsubscribe/")
    assert unsubscribe.endswith(">") and unsubscribe.count("<") == 1  # no mailto: nobody reads it
    assert "=?utf-8?" not in unsubscribe  # a plain header, not RFC 2047 words
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] and message["Date"]
    html = list(message.iter_parts())[1].get_content()
    assert 'style="' in html  # CSS inlined
    assert "https://alerts.desk.example/unsubscribe/" in html


def test_the_story_view_escapes_its_text_and_stays_inside_block_kit_limits() -> None:
    for item in (hostile_item(), biggest_story(0)):
        message = slack_blocks("story", story=story_context(item.story, [], []))
        texts = every_text(message)
        assert sum(len(t) for t in _texts(message["blocks"])) <= MESSAGE_TEXT_BUDGET
        for text in texts:
            assert "<!" not in text and "<https://evil" not in text and "<script" not in text


def merged_digest(recipient: str) -> tuple[Any, EmailMessage]:
    """The same daily digest through the mail merge and built for the reader the usual way."""
    settings = Settings.model_validate({"public_url": "https://alerts.desk.example",
                                        "email_from": "Desk <alerts@desk.example>"})
    parts = render_parts("daily", [hostile_item(), Item(Story.model_validate(story()), "")],
                         day=NOW.date(), since=NOW)
    merge = Merge(parts, settings)
    assert merge.usable
    return merge.address(recipient, b"k", NOW), address(parts, recipient, settings, b"k", NOW)


def test_a_merged_digest_is_byte_for_byte_the_email_built_for_its_reader() -> None:
    merged, built = merged_digest("reader@desk.example")
    assert isinstance(merged, Outgoing)
    assert (merged.sender, merged.recipient) == ("alerts@desk.example", "reader@desk.example")
    expected = built.as_bytes(policy=built.policy.clone(linesep="\r\n"))
    # Unique per message: the Message-ID, and the MIME boundary Python draws at random.
    for mine, theirs in ((str(built["Message-ID"]), merged.message_id),
                         (built.get_boundary(), merged.parsed().get_boundary())):
        expected = expected.replace(str(mine).encode(), str(theirs).encode())
    assert merged.data == expected
    assert merged.parsed()["To"] == "reader@desk.example"
    assert "reader@desk.example" in merged.parsed().get_body(  # type: ignore[union-attr]
        ("html",)).get_content()


def test_a_reader_whose_address_needs_escaping_gets_the_ordinary_path() -> None:
    merged, _ = merged_digest("o'brien&co@desk.example")
    assert isinstance(merged, EmailMessage)  # built for them, escaped by the template engine
    html = merged.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "o&#x27;brien&amp;co@desk.example" in html or "o&#39;brien&amp;co@desk.example" in html
