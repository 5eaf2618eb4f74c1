"""How every listener answers: ack at once, then work, then reply through response_url.

Slack shows an error unless the request is acknowledged within 3 s (docs/slack-app.md). So each
listener is split the way Bolt recommends for work that may take longer (its "lazy listeners"):
the ack half (`ack_at_once`) sends an empty 200 before any network or database call, and the
lazy half reads the clock once, does the work and answers with `respond()`, which posts to the
request's response_url (ephemeral, and it works in DMs and private channels alike).

The action-item buttons and `/story`, asked by many people at once, hand their work to `later`
instead: the same order (ack, answer, then work), without the per-request copies Bolt makes for
a lazy listener (docs/performance.md, "Action items: ack latency and owner edits").

Answers go out over kept-alive connections pooled per event loop (`post_answer`), closed when
the service stops (`close_answers`): Bolt's `respond()` opened a session, and so a connection, per
answer. They are posted by the lean client the Slack transport uses (bot/transports/http.py),
not aiohttp's session, whose request and response objects cost ~0.1 ms of the loop's CPU an
answer (docs/performance.md, "`/story` look-ups").
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.messages.render import slack_blocks
from bot.transports.http import HttpClient

log = logging.getLogger(__name__)
# Work handed to `later`, held until it ends: the loop keeps only weak references to tasks.
_running: set[asyncio.Task[None]] = set()

Clock = Callable[[], datetime]
# The answers' clients of each running loop, one per origin (one service per loop; tests run
# several loops). Slack's response_urls share one origin; the bound only keeps many origins
# (tests' servers) from holding connections for good.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, HttpClient]] = (
    weakref.WeakKeyDictionary())
MAX_ORIGINS = 8
# As long as slack_sdk's webhook client (what Bolt's respond() used) waits for an answer.
ANSWER_TIMEOUT = 30.0
JSON = {"Content-Type": "application/json"}


def utcnow() -> datetime:
    """The default clock; the service passes its own to `create_slack_app`."""
    return datetime.now(UTC)


async def ack_at_once(ack: AsyncAck) -> None:
    """The ack half of every listener: an empty 200, before anything else happens."""
    await ack()


async def reply_later(respond: AsyncRespond, work: Awaitable[dict[str, Any] | None],
                      **options: Any) -> None:
    """Post what `work` replies to the response_url (nothing when it replies None).

    Work that fails is answered too: after an empty ack, silence would be all the person saw.
    """
    try:
        reply = await work
    except Exception:
        log.exception("a Slack command failed after it was acknowledged")
        reply = slack_blocks("command_failed")
    if reply is None:
        return
    if type(respond) is AsyncRespond and respond.response_url and not respond.proxy \
            and respond.ssl is None:
        # The message Bolt's respond() builds (no empty blocks, no unset option), sent over
        # the pooled session.
        message = {"text": "", "response_type": "ephemeral", **options, **reply}
        await post_answer(respond.response_url, {
            key: value for key, value in message.items()
            if value is not None and not (key == "blocks" and not value)})
    else:
        await respond(response_type="ephemeral", **options, **reply)


async def post_answer(url: str, message: dict[str, Any]) -> None:
    """POST one answer (JSON) to a response_url over this loop's kept-alive connections to its
    origin, opened at the first answer. Slack's answer to it says nothing we act on; a refusal
    is logged. As aiohttp's session did: no retry (an answer must not show twice), a failure
    raises."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(origin)
    if client is None:
        if len(clients) >= MAX_ORIGINS:  # the oldest origin's idle connections go
            await clients.pop(next(iter(clients))).close()
        client = clients[origin] = HttpClient(origin)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(ANSWER_TIMEOUT):
        status, _, _ = await client.post(path, json.dumps(message).encode(), JSON)
    if status >= 400:
        log.warning("Slack refused an answer at its response_url: HTTP %s", status)


async def close_answers() -> None:
    """Close this loop's answers' connections, when the service stops."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.close()


def later(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` as a task of its own, which the ack does not wait for: what Bolt does with
    a lazy listener (`asyncio.ensure_future`), less its copying.

    For listeners pressed in bursts: before it runs a lazy listener, Bolt deep-copies the
    request and its context (the Web API client among them) and builds the request again,
    which took ~1.2 ms of CPU of a Claim press's ~2.2 ms, on the event loop every ack waits
    for (bench/claims.py).
    """
    task = asyncio.get_running_loop().create_task(work)
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("a Slack listener's work failed after its ack", exc_info=task.exception())
