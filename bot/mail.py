"""Email assembly: three templates per kind (subject, text, HTML), one `EmailMessage`.

Headers follow RFC 8058 (one-click unsubscribe). Nothing from a story can add a header: the
subject is folded to one line here, and `EmailMessage` refuses CR/LF in a header value anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import cache
from typing import Any

import css_inline

from bot.render import Item, email_env, item_context
from bot.settings import Settings
from bot.subscribers import unsubscribe_token

# Every line-break-like character str.splitlines() knows, plus other controls (PLATFORM-NOTES 5.2).
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# RFC 5322 allows 998-character lines. The default 78 makes Python encode a long unbroken
# List-Unsubscribe URL as RFC 2047 words, which mail clients do not read as a URL.
_POLICY = policy.default.clone(max_line_length=998)
_MODE_LABELS = {"alert": "instant action-item alerts", "digest": "instant action-item alerts",
                "daily": "the daily action-item digest", "test": "alertbot test messages"}


def header_safe(text: str) -> str:
    return _HEADER_UNSAFE.sub(" ", text).strip()


@cache
def _inliner() -> css_inline.CSSInliner:
    # No network at render time: our CSS is in the template.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)


def compose(
    kind: str,
    items: Sequence[Item],
    recipient: str,
    settings: Settings,
    key: bytes,
    now: datetime,
    more: int = 0,
    **extra: Any,
) -> EmailMessage:
    """Render `kind` (alert, digest, daily, test) for `recipient` as multipart/alternative.

    `extra` adds to the templates' context (the daily digest's date and zone).
    """
    token = unsubscribe_token(key, recipient)
    unsubscribe_url = f"{settings.public_url.rstrip('/')}/unsubscribe/{token}"
    sender = parseaddr(settings.email_from)[1] or "alertbot@localhost"
    context = {
        "kind": kind, "items": [item_context(item) for item in items],
        "count": len(items) + more,
        "more": more, "recipient": recipient, "unsubscribe_url": unsubscribe_url,
        "mode_label": _MODE_LABELS.get(kind, "alertbot emails"), **extra,
    }
    env = email_env()
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = header_safe(env.get_template(f"{kind}.subject.txt").render(context))
    message["From"] = settings.email_from
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("alertbot", domain=sender.rpartition("@")[2])
    message["List-Unsubscribe"] = (
        f"<{unsubscribe_url}>, <mailto:{sender}?subject=unsubscribe%20{token}>"
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(env.get_template(f"{kind}.txt").render(context), charset="utf-8")
    html = _inliner().inline(env.get_template(f"{kind}.html").render(context))
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message
