"""The HTTP door: push ingest, Slack events, unsubscribe, health, readiness, metrics.

Thin: it calls the service; it translates outcomes into status codes. Each endpoint is a
module-level function that reads what it calls from `request.app.state.wiring`, set once by
`create_app`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.messages.render import page_env
from bot.rules.claims import State
from bot.stories.parsing import UnusableInput
from bot.web.headers import PageHeaders
from bot.web.limits import ClientLimit
from bot.web.preferences import PreferenceDoor, preferences_page
from bot.web.signup import SignupDoor, confirm_page, signup_page

log = logging.getLogger(__name__)
MAX_PUSH_BYTES = 5 * 1024 * 1024

Ingest = Callable[[bytes], Awaitable[dict[str, Any]]]
Ready = Callable[[], Awaitable[tuple[dict[str, str], dict[str, str]]]]
# (token, act) -> the address the token names, or None when it is tampered with or foreign;
# with act=True the address is unsubscribed.
Unsubscribe = Callable[[str, bool], Awaitable[str | None]]
Exposition = Callable[[], Awaitable[bytes]]  # the Prometheus text format
ActionItems = Callable[[State], Awaitable[list[dict[str, Any]]]]
Answered = Callable[[str, float], None]  # (Slack request name, seconds to answer)
TRY_AGAIN = {"Retry-After": "5"}  # the database is away: nothing changed, say try again
_COMMAND = re.compile(rb"(?:^|&)command=([^&]+)")  # a non-empty value, as parse_qs keeps


@dataclass(frozen=True)
class Wiring:
    """What the endpoints call: the service's doors, set once on `app.state.wiring`."""

    ingest: Ingest
    ready: Ready
    ingest_token: str | None
    unsubscribe: Unsubscribe | None = None
    metrics: Exposition | None = None
    slack: AsyncSlackRequestHandler | None = None
    verifier: SignatureVerifier | None = None
    answered: Answered | None = None
    preferences: PreferenceDoor | None = None
    # the public pages' per-client limit (bot/web/limits.py), shared by unsubscribe and
    # preferences
    limit: ClientLimit = field(default_factory=ClientLimit)
    action_items: ActionItems | None = None
    signup: SignupDoor | None = None  # None: no sign-up domains, no sign-up pages


def _wiring(request: Request) -> Wiring:
    wiring: Wiring = request.app.state.wiring
    return wiring


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _authorised(request: Request, token: str | None) -> bool:
    if token is None:  # no ALERTBOT_INGEST_TOKEN: push ingest is refused (README, Configuration)
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def _slack_request_name(body: bytes) -> str:
    """`/story` for a slash command, `block_actions` for a button press, `app_home_opened` for
    an event (Events API requests are JSON, not a form): a metrics label."""
    if body.lstrip().startswith(b"{"):
        try:
            document = json.loads(body)
            event = document.get("event")
            return str(event.get("type") if isinstance(event, dict) else document.get("type"))
        except (ValueError, AttributeError):
            return "other"
    # A slash command's name without parsing the whole form a second time (Bolt parsed it):
    # ~1 µs against ~15 µs a request under /story's load. Slack sends `command` once, its
    # name unencoded; anything else takes parse_qs below.
    command = _COMMAND.search(body)
    if command is not None:
        return unquote_plus(command.group(1).decode(errors="replace"))
    form = parse_qs(body.decode(errors="replace"))
    if "command" in form:
        return form["command"][0]
    try:
        return str(json.loads(form.get("payload", ["{}"])[0]).get("type", "other"))
    except (ValueError, AttributeError):
        return "other"


def _cause(exc: DBAPIError) -> str:
    """The driver's error class, for a log line that names no secret."""
    return type(exc.orig).__name__ if exc.orig else type(exc).__name__


async def push(request: Request) -> Response:
    """POST /api/stories: 202 with the report, 400 unusable, 401, 413 too large, 503 no db."""
    wiring = _wiring(request)
    if not _authorised(request, wiring.ingest_token):
        return _unauthorised()
    try:
        body = await _read_body(request, MAX_PUSH_BYTES)
    except _TooLarge:
        return JSONResponse({"error": f"body larger than {MAX_PUSH_BYTES} bytes"},
                            status_code=413)
    try:
        report = await wiring.ingest(body)
    except UnusableInput as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except DBAPIError as exc:  # the database is away: nothing was stored, say try again
        log.warning("push refused while the database is unavailable: %s", _cause(exc))
        return JSONResponse({"error": "the database is unavailable; nothing was stored, "
                                      "send again shortly"}, status_code=503, headers=TRY_AGAIN)
    return JSONResponse(report, status_code=202)


def _unauthorised() -> Response:
    return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def action_items_page(request: Request) -> Response:
    """GET /api/actionitems?state=open|claimed|done|dismissed (bearer token, as for a push):
    200 with the items, 400 for another state, 401, 503 no db."""
    wiring = _wiring(request)
    if not _authorised(request, wiring.ingest_token):
        return _unauthorised()
    given = request.query_params.get("state", State.OPEN.value)
    if given not in set(State):
        return JSONResponse({"error": f"parameter 'state' must be one of "
                                      f"{', '.join(State)}, not {given!r}"}, status_code=400)
    assert wiring.action_items is not None  # routed only with it
    try:
        found = await wiring.action_items(State(given))
    except DBAPIError as exc:
        log.warning("action items unavailable while the database is: %s", _cause(exc))
        return JSONResponse({"error": "the database is unavailable; ask again shortly"},
                            status_code=503, headers=TRY_AGAIN)
    return Response(json.dumps(found, default=_iso), media_type="application/json")


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    problems, degraded = await _wiring(request).ready()
    return JSONResponse({"ready": not problems, "problems": problems, "degraded": degraded},
                        status_code=503 if problems else 200)


async def unsubscribe_page(request: Request) -> Response:
    """GET shows a confirmation page (mail scanners follow links; they must not unsubscribe
    anyone). POST unsubscribes at once: RFC 8058's one-click POST, answered without a
    redirect, and the page's own button."""
    unsubscribe = _wiring(request).unsubscribe
    act = request.method == "POST"
    template = page_env().get_template("unsubscribe.html")
    if not _wiring(request).limit.allow(request):
        return HTMLResponse(template.render(outcome="busy", address=""), status_code=429,
                            headers={"Retry-After": "60"})
    try:
        address = (await unsubscribe(request.path_params["token"], act) if unsubscribe
                   else None)
    except DBAPIError as exc:  # as for a push: nothing changed, say try again
        log.warning("unsubscribe refused while the database is unavailable: %s", _cause(exc))
        return HTMLResponse(template.render(outcome="unavailable", address=""),
                            status_code=503, headers=TRY_AGAIN)
    outcome = "invalid" if address is None else "done" if act else "confirm"
    page = template.render(outcome=outcome, address=address or "")
    return HTMLResponse(page, status_code=400 if address is None else 200)


async def metrics_page(request: Request) -> Response:
    metrics = _wiring(request).metrics
    if metrics is None:
        return PlainTextResponse("", status_code=404)
    try:
        text = await metrics()
    except Exception as exc:  # the database is down: say so, as /readyz does
        return PlainTextResponse(f"# metrics unavailable: {type(exc).__name__}\n",
                                 status_code=503)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def slack_events(request: Request) -> Response:
    """POST /slack/events, answered by Bolt; its adapter reads the raw body itself, since the
    request signature covers exactly those bytes."""
    wiring = _wiring(request)
    assert wiring.slack is not None and wiring.verifier is not None  # routed only with both
    started = time.perf_counter()
    try:
        response = await wiring.slack.handle(request)
        if wiring.answered is not None and response.status_code == 200:
            wiring.answered(_slack_request_name(await request.body()),
                            time.perf_counter() - started)
        return response
    except Exception as exc:  # Bolt trips on some malformed bodies (payload=0)
        body = await request.body()
        if not wiring.verifier.is_valid_request(body, dict(request.headers)):
            return PlainTextResponse("invalid request signature", status_code=401)
        log.warning("malformed Slack request refused: %s", type(exc).__name__)
        return PlainTextResponse("malformed request", status_code=400)


def create_app(ingest: Ingest, ready: Ready, ingest_token: str | None,
               slack: AsyncApp | None = None, unsubscribe: Unsubscribe | None = None,
               metrics: Exposition | None = None, signing_secret: str = "",
               answered: Answered | None = None,
               preferences: PreferenceDoor | None = None,
               limit: ClientLimit | None = None,
               action_items: ActionItems | None = None,
               signup: SignupDoor | None = None) -> Starlette:
    """Build the ASGI app; `ingest` stores and evaluates a parsed body, `ready` checks health.

    `slack` (Bolt) answers POST /slack/events; without it that route does not exist.
    """
    routes = [
        Route("/api/stories", push, methods=["POST"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "POST"]),
        Route("/preferences/{token}", preferences_page, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if action_items is not None:
        routes.append(Route("/api/actionitems", action_items_page, methods=["GET"]))
    if signup is not None:
        routes += [Route("/signup", signup_page, methods=["GET", "POST"]),
                   Route("/signup/confirm/{token}", confirm_page, methods=["GET", "POST"])]
    if slack is not None:
        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    # the security headers on every HTML page (bot/web/headers.py)
    app = Starlette(routes=routes, middleware=[Middleware(PageHeaders)])
    app.state.wiring = Wiring(
        ingest, ready, ingest_token, unsubscribe, metrics,
        slack=AsyncSlackRequestHandler(slack) if slack is not None else None,
        verifier=SignatureVerifier(signing_secret) if slack is not None else None,
        answered=answered, preferences=preferences,
        limit=ClientLimit() if limit is None else limit, action_items=action_items,
        signup=signup,
    )
    return app
