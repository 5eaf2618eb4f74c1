"""Every email alertbot sends says it is automatic (RFC 3834) and offers one-click unsubscribe
(RFC 8058) through its https link only: a mailto would go to an address nobody reads."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest

from bot.messages.mail import Merge, compose, render_parts
from bot.messages.render import Item
from bot.readers.subscribers import verify_token
from bot.settings import Settings
from bot.stories.model import Story
from bot.transports import Outgoing
from tests.conftest import story

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
KEY = b"test-key"
READER = "reader@desk.example"
SETTINGS = Settings.model_validate({"public_url": "https://alerts.desk.example",
                                    "email_from": "Desk alerts <alerts@desk.example>"})


def items(count: int) -> list[Item]:
    return [Item(Story.model_validate(story(id=f"s{n}")), "impact 8 ≥ 8") for n in range(count)]


def parsed(message: EmailMessage | Outgoing) -> EmailMessage:
    """The message as a receiving mail client reads it: from its bytes on the wire."""
    data = message.data if isinstance(message, Outgoing) else message.as_bytes(
        policy=message.policy.clone(linesep="\r\n"))
    return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def sent(kind: str) -> EmailMessage:
    if kind == "daily":
        parts = render_parts("daily", items(3), day=NOW.date(), since=NOW)
        merge = Merge(parts, SETTINGS)
        assert merge.usable  # the mail-merge path, as daily digests go out
        return parsed(merge.address(READER, KEY, NOW))
    count = {"alert": 1, "batch": 3, "test": 0}[kind]
    return parsed(compose(kind, items(count), READER, SETTINGS, KEY, NOW))


def assert_unsubscribe_headers(message: EmailMessage, reader: str) -> str:
    """The headers every receiver checks; returns the https URI."""
    assert message.get_all("List-Unsubscribe") and len(message.get_all("List-Unsubscribe")) == 1
    value = str(message["List-Unsubscribe"])
    uris = re.findall(r"<([^>]*)>", value)
    assert len(uris) == 1, value  # exactly one URI ...
    assert re.fullmatch(r"\s*<[^>]*>\s*", value), value  # ... and nothing else in the header
    assert "mailto" not in value.lower()
    scheme, host, path, _, _ = urlsplit(uris[0])
    assert (scheme, host) == ("https", "alerts.desk.example") and path.startswith("/unsubscribe/")
    assert verify_token(KEY, path.rsplit("/", 1)[1]) == reader  # it names this reader
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert message.get_all("Auto-Submitted") == ["auto-generated"]
    return uris[0]


@pytest.mark.parametrize("kind", ["alert", "batch", "daily", "test"])
def test_every_kind_carries_the_automatic_and_one_click_headers(kind: str) -> None:
    message = sent(kind)
    assert message["To"] == READER and message["Message-ID"] and message["Date"]
    assert_unsubscribe_headers(message, READER)


def test_a_reader_off_the_merge_path_gets_the_same_headers() -> None:
    # An address the merge cannot substitute as it is: the message is built for the reader.
    parts = render_parts("daily", items(2), day=NOW.date(), since=NOW)
    odd = "o'brien&co@desk.example"
    built = Merge(parts, SETTINGS).address(odd, KEY, NOW)
    assert isinstance(built, EmailMessage)
    assert_unsubscribe_headers(parsed(built), odd)


@pytest.mark.parametrize("kind", ["alert", "batch", "daily", "test"])
def test_the_body_links_unsubscribe_and_preferences_in_text_and_html(kind: str) -> None:
    """Every email a reader gets (instant, digest, test) offers both links in each part: the
    header's unsubscribe URI, and "Manage preferences"."""
    message = sent(kind)
    uri = assert_unsubscribe_headers(message, READER)
    for part in ("plain", "html"):
        body = message.get_body((part,))
        assert body is not None
        content = body.get_content()
        assert uri in content, (kind, part)
        assert "Manage preferences" in content and "/preferences/" in content, (kind, part)
