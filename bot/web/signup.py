"""Self sign-up with double opt-in: GET /signup takes an address in the desk's sign-up domains
and emails a confirmation link; only confirming on that link's page subscribes.

Link scanners and mail clients fetch links before a person does, so the link's GET only
shows the confirmation page; its POST, with the page's own token, subscribes. Both forms carry
a token bound to the page (`bot/web/page_tokens.py`: an HMAC of what the page is for and when
it was issued), so a form posted from another site, or one older than its lifetime, changes
nothing.

Limits (docs/decisions.md, "Self sign-up"): the public pages' per-client limit, then
`[email] signup_per_client` sign-up requests per client address an hour, and, in the outbox,
one confirmation per address every ten minutes (bot/outbox/confirmations.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot.db import Database
from bot.messages.render import page_env
from bot.outbox import confirmations
from bot.readers import subscribers
from bot.readers.signup import allowed, expiry, verify_confirm_token
from bot.readers.subscribers import Subscriber, preferences_token
from bot.web.limits import HOUR, ClientLimit
from bot.web.page_tokens import page_token, page_token_ok
from bot.web.preferences import guess_script, zones

log = logging.getLogger(__name__)
MAX_FORM_BYTES = 4 * 1024


@dataclass(frozen=True)
class SignupDoor:
    """What the pages need: storage, the signing key, the clock, the desk's sign-up domains,
    the digest hour new readers start with, the per-client limit on requests, and a way to
    wake the delivery workers for the confirmation row just queued."""

    db: Database
    key: bytes
    clock: Callable[[], datetime]
    domains: Sequence[str]
    digest_hour: str
    limit: ClientLimit
    wake: Callable[[], None]


def _page(status: int, outcome: str, **context: Any) -> Response:
    # Links are relative to the confirmation page (/signup/confirm/<token>), so they keep a
    # path prefix a proxy serves the service under.
    context = {"address": "", "error": "", "domains": (), "csrf": "", "email": "",
               "preferences_url": "", "zones": (), "script": "", **context}
    html = page_env().get_template("signup.html").render(outcome=outcome, **context)
    wait = int(HOUR) if outcome == "limited" else 60
    headers = {"Retry-After": str(wait if status == 429 else 5)} if status in (429, 503) else {}
    return HTMLResponse(html, status_code=status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    return {k: v[-1] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode(errors="replace"),
                                          keep_blank_values=True).items()}


def _door(request: Request) -> tuple[SignupDoor, ClientLimit]:
    wiring = request.app.state.wiring
    door: SignupDoor = wiring.signup  # routed only with it
    return door, wiring.limit


def _request_form(door: SignupDoor, status: int = 200, **context: Any) -> Response:
    issued = int(door.clock().timestamp())
    return _page(status, "form", domains=door.domains,
                 csrf=page_token(door.key, "signup-form", "", issued), **context)


async def signup_page(request: Request) -> Response:
    """GET: the form. POST: check the address and queue its confirmation email."""
    door, pages = _door(request)
    if not pages.allow(request):
        return _page(429, "busy")
    if request.method == "GET":
        return _request_form(door)
    form = await _form(request)
    now = door.clock()
    if not page_token_ok(door.key, "signup-form", "", form.get("csrf", ""), now):
        return _page(400, "expired")
    if not door.limit.allow(request):
        return _page(429, "limited")
    given = form.get("email", "").strip()
    try:
        address = subscribers.validate(given, "daily", "UTC", (), door.digest_hour).email
    except ValueError:
        return _request_form(door, 400, error="email", email=given)
    if not allowed(address, door.domains):
        return _request_form(door, 400, error="domain", email=given)
    try:
        asked = await door.db.write(confirmations.request, address, expiry(now), now)
    except IntegrityError:  # another replica queued this address's confirmation just now
        asked = confirmations.Asked.LIMITED
    except DBAPIError as exc:  # as for a push: nothing changed, say try again
        log.warning("sign-up refused while the database is unavailable: %s", type(exc).__name__)
        return _page(503, "unavailable")
    log.info("sign-up asked for %s: %s", address, asked.value)
    if asked is confirmations.Asked.QUEUED:
        door.wake()
    # The same answer whatever happened, so the page tells no one who is subscribed.
    return _page(200, "sent", address=address)


def _subscribe_if_new(db: Connection, wanted: Subscriber, now: datetime) -> bool:
    """Add the reader unless already subscribed (a second confirmation changes nothing they
    set on their preference page); True when added."""
    if subscribers.find(db, wanted.email) is not None:
        return False
    return subscribers.add(db, wanted, now)


async def confirm_page(request: Request) -> Response:
    """GET: the confirmation page (a scanner's fetch changes nothing). POST: subscribe."""
    door, pages = _door(request)
    if not pages.allow(request):
        return _page(429, "busy")
    now = door.clock()
    address = verify_confirm_token(door.key, request.path_params["token"], now)
    if address is None or not allowed(address, door.domains):
        return _page(400, "invalid")
    if request.method == "GET":
        return _confirm_form(door, address)
    form = await _form(request)
    if not page_token_ok(door.key, "signup-confirm", address, form.get("csrf", ""), now):
        return _page(400, "expired")
    zone = form.get("timezone", "").strip() or "UTC"
    try:
        wanted = subscribers.validate(address, form.get("mode", ""), zone, (),
                                      door.digest_hour)
    except ValueError as exc:
        return _confirm_form(door, address, 400, error=str(exc).partition(":")[0])
    try:
        added = await door.db.write(_subscribe_if_new, wanted, now)
    except IntegrityError:  # confirmed at this moment by another request (a double click)
        added = False
    except DBAPIError as exc:
        log.warning("sign-up confirmation refused while the database is unavailable: %s",
                    type(exc).__name__)
        return _page(503, "unavailable")
    log.info("sign-up confirmed for %s%s", address, "" if added else " (already subscribed)")
    return _page(200, "subscribed" if added else "already", address=address,
                 preferences_url=f"../../preferences/{preferences_token(door.key, address)}")


def _confirm_form(door: SignupDoor, address: str, status: int = 200, error: str = ""
                  ) -> Response:
    issued = int(door.clock().timestamp())
    return _page(status, "confirm", address=address, error=error, zones=zones(),
                 script=guess_script(),
                 csrf=page_token(door.key, "signup-confirm", address, issued))
