"""The email preference center: GET shows a reader's settings, POST changes them.

The link in every email carries a token signed for the purpose "preferences" (an unsubscribe
token does not open it). The form carries a second token bound to the page
(`bot/web/page_tokens.py`, purpose "preferences-form", about the address), so a form posted
from elsewhere, or one older than its lifetime, changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot.db import Database
from bot.messages.render import page_env, templates_dir
from bot.readers import subscribers
from bot.readers.subscribers import Subscriber, verify_token
from bot.web import headers
from bot.web.limits import ClientLimit
from bot.web.page_tokens import page_token, page_token_ok

FORM_PURPOSE = "preferences-form"
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class PreferenceDoor:
    """What the page needs: the database, the signing key, the clock."""

    db: Database
    key: bytes
    clock: Callable[[], datetime]


@cache
def guess_script() -> str:
    """The inline script that guesses a reader's zone; the CSP allows it by its hash."""
    text = (templates_dir() / "web" / "tz_guess.js").read_text()
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    headers.SCRIPT_HASHES.append(f"'sha256-{digest}'")
    return text


@cache
def zones() -> list[str]:
    """The time zones a page's zone field offers (this page's and the sign-up page's)."""
    return sorted(available_timezones())


def _page(status: int, **context: Any) -> Response:
    context.setdefault("outcome", "form")
    html = page_env().get_template("preferences.html").render(**context)
    return HTMLResponse(html, status_code=status)


def _form(door: PreferenceDoor, reader: Subscriber, status: int = 200, error: str = "",
          saved: bool = False) -> Response:
    issued = int(door.clock().timestamp())
    return _page(status, reader=reader, zones=zones(), script=guess_script(), error=error,
                 saved=saved, csrf=page_token(door.key, FORM_PURPOSE, reader.email, issued))


def _changed(reader: Subscriber, form: dict[str, str]) -> Subscriber:
    """The reader with the form's values; ValueError names the first bad field."""
    topics = form.get("topics", "").replace(";", ",").split(",")
    checked = subscribers.validate(reader.email, form.get("mode", ""),
                                   form.get("timezone", "").strip(), topics,
                                   form.get("digest_hour", "").strip())
    impact_text = form.get("min_impact", "").strip()
    try:
        impact = float(impact_text) if impact_text else None
    except ValueError:
        raise ValueError("min_impact") from None
    if impact is not None and not 1 <= impact <= 10:
        raise ValueError("min_impact")
    pause_text = form.get("paused_until", "").strip()
    try:
        paused = date.fromisoformat(pause_text) if pause_text else None
    except ValueError:
        raise ValueError("paused_until") from None
    return replace(checked, min_impact=impact, paused_until=paused)


async def preferences_page(request: Request) -> Response:
    """GET: the reader's settings in a form. POST: save them, or say which field is wrong."""
    door: PreferenceDoor | None = request.app.state.wiring.preferences
    limit: ClientLimit = request.app.state.wiring.limit
    if door is None:
        return _page(404, outcome="invalid")
    if not limit.allow(request):
        return _page(429, outcome="busy")
    address = verify_token(door.key, request.path_params["token"], "preferences")
    reader = await door.db.read(subscribers.find, address) if address else None
    if reader is None:  # forged, tampered, foreign, or no longer subscribed
        return _page(404, outcome="invalid")
    if request.method == "GET":
        return _form(door, reader)
    body = await request.body()
    form = {k: v[-1] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode(errors="replace"),
                                          keep_blank_values=True).items()}
    if not page_token_ok(door.key, FORM_PURPOSE, reader.email, form.get("csrf", ""),
                         door.clock()):
        return _page(400, outcome="expired")
    try:
        wanted = _changed(reader, form)
    except ValueError as exc:
        return _form(door, reader, 400, error=str(exc).partition(":")[0])
    await door.db.write(subscribers.add, wanted, door.clock())
    return _form(door, wanted, saved=True)
