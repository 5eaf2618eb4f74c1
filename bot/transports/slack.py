"""Slack Web API transport: chat.postMessage (and chat.update, chat.unfurl) as JSON POSTs over
kept-alive connections (`http.py`).

It posts directly rather than through slack_sdk's async client, which cost ~0.4 ms of CPU a
call, or aiohttp, ~0.2 ms, against ~0.08 ms (measured in docs/performance.md): the same request
(JSON body, bearer token), the same answers read (HTTP status, `ok`/`error`, Retry-After), the
same one retry of a connection the server closed before answering that slack_sdk's
connection-error handler made.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from typing import Any

import orjson

from bot.transports import DeliveryError, SlackCall
from bot.transports.http import BadAnswer, HttpClient

# Errors that another attempt cannot fix (https://docs.slack.dev/reference/methods/chat.postMessage).
PERMANENT = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "channel_not_found", "not_in_channel", "is_archived",
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long",
    "no_text", "restricted_action", "invalid_arguments", "too_many_attachments",
    "method_not_supported_for_channel_type",
    # chat.unfurl (https://docs.slack.dev/reference/methods/chat.unfurl): the message or the
    # link is not there (any more), or the workspace does not let the app unfurl it.
    "cannot_find_channel", "cannot_find_message", "cannot_unfurl_message", "cannot_unfurl_url",
    "cannot_find_service", "cannot_parse_attachment", "invalid_unfurls_format",
    "missing_unfurls",
})


HINTS = {
    "method_not_supported_for_channel_type": " (a private channel: invite the bot to it)",
    "channel_not_found": " (check the channel ID in the route)",
    "invalid_auth": " (check SLACK_BOT_TOKEN)",
    "missing_scope": " (add the scope to the Slack app and reinstall it)",
}


class SlackError(Exception):
    """A Web API answer that is not `ok`: its HTTP status, headers (lower-case names) and
    `error`."""

    def __init__(self, status: int, headers: Mapping[str, str], error: str | None) -> None:
        super().__init__(error or f"HTTP {status}")
        self.status, self.headers, self.error = status, headers, error


class SlackTransport:
    def __init__(self, token: str, base_url: str, timeout: float = 10.0) -> None:
        try:
            self._client = HttpClient(base_url)
        except ValueError as exc:
            raise ValueError(f"SLACK_API_URL: {exc}") from None
        self._headers = {"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json;charset=utf-8"}
        # `[slack] timeout`, for the whole of one call (connecting, sending, the answer): a
        # call still unanswered then fails as a passing error and the outbox retries it. A
        # post that did arrive but was answered later than this is posted again (Slack has no
        # idempotency key for chat.postMessage): docs/decisions.md, "The Slack timeout".
        self._timeout = timeout

    async def send(self, calls: list[SlackCall]) -> str | None:
        """Make the Web API calls in order; return the first one's message ts.

        A retry repeats them all: an edit (chat.update) is idempotent, and a thread reply is
        only the last call, so it is not made before the edit it describes.
        """
        first: str | None = None
        for method, args in calls:
            ts = await self._call(method, args)
            first = first if first is not None else ts
        return first

    async def _call(self, method: str, args: dict[str, Any]) -> str | None:
        try:
            try:
                answer = await self._api(method, args)
            except SlackError as exc:
                if exc.error != "not_in_channel" or "channel" not in args:
                    raise
                # A public channel the bot has not joined: join it once, then post again.
                # Private channels answer method_not_supported_for_channel_type: a person
                # must invite the bot (https://docs.slack.dev/reference/methods/conversations.join).
                await self._api("conversations.join", {"channel": args["channel"]})
                answer = await self._api(method, args)
        except SlackError as exc:
            raise _classify(exc) from None
        except TimeoutError:
            raise DeliveryError(f"Slack did not answer within {self._timeout:g} s "
                                "(the message may have been posted)") from None
        except (OSError, EOFError, BadAnswer) as exc:
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}: {exc}") from None
        return str(answer.get("ts")) if answer.get("ts") else None

    async def _api(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Web API call; its JSON answer, or SlackError unless it is HTTP 200 and `ok`."""
        body = _json(args)
        path = self._client.path + method
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self._timeout):  # the whole call, answer included
                    status, headers, raw = await self._client.post(path, body, self._headers)
                break
            except TimeoutError:  # an OSError too, but given up on: the outbox retries it
                raise
            except OSError:
                # Refused, reset, or closed before any answer (a kept-alive connection the
                # server dropped): once more after 0.5–1.5 s, as slack_sdk's connection-error
                # handler did. Server errors and 429 are retried by the outbox, the one place
                # for retries.
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5 + random.random())
        answer = _answer(raw)
        if not isinstance(answer, dict):
            answer = {}
        if status != 200 or not answer.get("ok"):
            error = answer.get("error")
            raise SlackError(status, headers, str(error) if error is not None else None)
        return answer

    async def idle(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.close()


def _classify(exc: SlackError) -> DeliveryError:
    status, error = exc.status, exc.error
    if status == 429:
        retry_after = float(exc.headers.get("retry-after", "1") or 1)
        return DeliveryError(f"Slack rate limit: retry after {retry_after:g} s",
                             retry_after=retry_after)
    if status >= 500:
        return DeliveryError(f"Slack server error: HTTP {status}")
    hint = HINTS.get(str(error), "")
    return DeliveryError(f"Slack error: {error or f'HTTP {status}'}{hint}",
                         permanent=error in PERMANENT or (400 <= status < 500 and status != 429))


def _json(args: dict[str, Any]) -> bytes:
    """A call's JSON body. orjson takes ~1 µs where `json.dumps` took ~25 µs for an alert
    (docs/performance.md); text holding a lone surrogate (JSON's "\\ud800" in a story
    decodes to one) is not UTF-8, which orjson refuses, so it goes as `json` writes it:
    escaped, as before."""
    try:
        return orjson.dumps(args)
    except TypeError:
        return json.dumps(args).encode()


def _answer(raw: bytes) -> Any:
    """The answer's JSON; {} when it is not JSON (an HTML error page: the status says why).
    An answer orjson refuses, such as one echoing a lone surrogate the message carried, is
    read by `json`: taken for no answer, a post that went out would be sent again."""
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except ValueError:
            return {}
