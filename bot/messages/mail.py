"""Email assembly: three templates per kind (subject, text, HTML), one `EmailMessage`.

Templates own the words: each names the subscription it is sent under (`_words.j2`), and dates
come to them as dates.

Headers follow RFC 8058 (one-click unsubscribe: the https link only, see docs/decisions.md) and
RFC 3834 (`Auto-Submitted: auto-generated`). Nothing from a story can add a header: the subject
is folded to one line here, and `EmailMessage` refuses CR/LF in a header value anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import cache
from html import escape
from typing import Any

import css_inline

from bot.messages.render import Item, email_env, item_context
from bot.readers.subscribers import preferences_token, unsubscribe_token
from bot.settings import Settings
from bot.transports import Outgoing

# Every line-break-like character str.splitlines() knows, plus other controls (PLATFORM-NOTES 5.2).
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, making each header's class once.

    `HeaderRegistry` builds a new class (`type(...)`) for every header set or parsed, ~20 an
    email: ~40 % of building an instant email, and each new class empties the interpreter's
    method caches for everything else. The class depends only on the registry's entry for the
    name, so one per entry is the same class as a new one each time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = super().__getitem__(name)
        return made


# RFC 5322 allows 998-character lines. The default 78 makes Python encode a long unbroken
# List-Unsubscribe URL as RFC 2047 words, which mail clients do not read as a URL.
_POLICY = policy.default.clone(max_line_length=998, header_factory=_HeaderClasses())


def header_safe(text: str) -> str:
    return _HEADER_UNSAFE.sub(" ", text).strip()


@cache
def _inliner() -> css_inline.CSSInliner:
    # No network at render time: our CSS is in the template.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)


# Stand-ins for what differs per reader, so one rendering serves every reader of the same
# content (a daily digest to 100,000 subscribers renders once per distinct digest). Plain
# letters: escaping and CSS inlining leave them as they are.
_RECIPIENT = "alertbotrecipientplaceholder"
_UNSUBSCRIBE = "https://alertbot.invalid/unsubscribeplaceholder"
_PREFERENCES = "https://alertbot.invalid/preferencesplaceholder"


@dataclass(frozen=True)
class Parts:
    """A rendered email before it is addressed: subject, text and HTML with stand-ins."""

    subject: str
    text: str
    html: str


def render_parts(template: str, items: Sequence[Item], more: int = 0, **extra: Any) -> Parts:
    """Render templates/email/<template>.{subject.txt,txt,html} (a kind's), not yet for anyone.

    `extra` adds to the templates' context (the daily digest's date and window).
    """
    context = {
        "items": [item_context(item) for item in items], "count": len(items) + more,
        "more": more, "recipient": _RECIPIENT, "unsubscribe_url": _UNSUBSCRIBE,
        "preferences_url": _PREFERENCES, **extra,
    }
    env = email_env()
    return Parts(
        subject=header_safe(env.get_template(f"{template}.subject.txt").render(context)),
        text=env.get_template(f"{template}.txt").render(context),
        html=_inliner().inline(env.get_template(f"{template}.html").render(context)),
    )


def _message(parts: Parts, recipient: str, links: tuple[str, str], settings: Settings,
             date: str, message_id: str) -> EmailMessage:
    """`links`: the reader's unsubscribe and preferences URLs."""
    unsubscribe_url, preferences_url = links
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = parts.subject
    message["From"] = settings.email_from
    message["To"] = recipient
    message["Date"] = date
    message["Message-ID"] = message_id
    # Only the https URI: RFC 8058 needs just that one. A mailto would go to EMAIL_FROM, which
    # nothing reads, so a client that chose it would lose the request (docs/decisions.md).
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # RFC 3834: machine-sent, so auto-responders (out-of-office, vacation) do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    text = (parts.text.replace(_RECIPIENT, recipient).replace(_UNSUBSCRIBE, unsubscribe_url)
            .replace(_PREFERENCES, preferences_url))
    html = (parts.html.replace(_RECIPIENT, escape(recipient))
            .replace(_UNSUBSCRIBE, escape(unsubscribe_url))
            .replace(_PREFERENCES, escape(preferences_url)))
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def _sender(settings: Settings) -> str:
    return parseaddr(settings.email_from)[1] or "alertbot@localhost"


def _links(settings: Settings, key: bytes, recipient: str) -> tuple[str, str]:
    """The reader's one-click unsubscribe and "Manage preferences" URLs, each signed for
    its own purpose."""
    base = settings.public_url.rstrip("/")
    return (f"{base}/unsubscribe/{unsubscribe_token(key, recipient)}",
            f"{base}/preferences/{preferences_token(key, recipient)}")


def address(parts: Parts, recipient: str, settings: Settings, key: bytes, now: datetime
            ) -> EmailMessage:
    """`parts` for one reader: their unsubscribe link, and the RFC 8058 headers."""
    sender = _sender(settings)
    return _message(parts, recipient, _links(settings, key, recipient), settings,
                    format_datetime(now), make_msgid("alertbot", domain=sender.rpartition("@")[2]))


# Stand-ins for the per-message headers and link of a merge. The address and the date must
# parse as what they stand for; all are ASCII that no encoding or folding changes.
_M_RECIPIENT = "reader@alertbot-merge.invalid"
_M_URL = "https://alertbot-merge.invalid/unsubscribe/ALERTBOTMERGETOKEN"
_M_PREFS = "https://alertbot-merge.invalid/preferences/ALERTBOTMERGEPREFS"
_M_DATE = "Thu, 01 Jan 1970 00:00:00 -0000"
_M_ID = "<merge@alertbot-merge.invalid>"
_WIRE = _POLICY.clone(linesep="\r\n")


class Merge:
    """One email for many readers, flattened once and addressed by replacing stand-ins in the
    bytes (a mail merge): ~0.02 ms a reader, where building and flattening an `EmailMessage`
    costs ~2 ms, most of a digest run's CPU at 100,000 subscribers.

    The template is built by the same `_message` as every other email. A reader whose address
    or link would need escaping, or a template whose parts Python chose to encode (quoted-
    printable or base64, which would break the stand-ins), takes the ordinary path instead;
    tests compare the two byte for byte apart from Message-ID and Date.
    """

    def __init__(self, parts: Parts, settings: Settings) -> None:
        self._parts = parts
        self._settings = settings
        self._sender = _sender(settings)
        message = _message(parts, _M_RECIPIENT, (_M_URL, _M_PREFS), settings, _M_DATE, _M_ID)
        data = message.as_bytes(policy=_WIRE)
        head, _, body = data.partition(b"\r\n\r\n")
        self._head, self._body = head + b"\r\n\r\n", body
        plain = b"quoted-printable" not in data and b"Content-Transfer-Encoding: base64" not in data
        self.usable = plain and all(
            self._head.count(stand_in.encode()) == 1
            for stand_in in (_M_RECIPIENT, _M_URL, _M_DATE, _M_ID))

    def address(self, recipient: str, key: bytes, now: datetime) -> Outgoing | EmailMessage:
        url, prefs = links = _links(self._settings, key, recipient)
        message_id = make_msgid("alertbot", domain=self._sender.rpartition("@")[2])
        date = format_datetime(now)
        plain = (recipient.isascii() and escape(recipient) == recipient and escape(url) == url
                 and escape(prefs) == prefs and len(recipient) <= 254 and len(url) <= 400)
        if not (self.usable and plain):
            return _message(self._parts, recipient, links, self._settings, date, message_id)
        head = (self._head.replace(_M_URL.encode(), url.encode())
                .replace(_M_RECIPIENT.encode(), recipient.encode())
                .replace(_M_DATE.encode(), date.encode())
                .replace(_M_ID.encode(), message_id.encode()))
        body = (self._body.replace(_M_URL.encode(), url.encode())
                .replace(_M_PREFS.encode(), prefs.encode())
                .replace(_M_RECIPIENT.encode(), recipient.encode()))
        return Outgoing(self._sender, recipient, message_id, head + body)


def compose(template: str, items: Sequence[Item], recipient: str, settings: Settings,
            key: bytes, now: datetime, more: int = 0, **extra: Any) -> EmailMessage:
    """Render and address in one step (alerts, batches, tests)."""
    return address(render_parts(template, items, more, **extra), recipient, settings, key, now)
