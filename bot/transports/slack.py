"""Slack Web API transport: chat.postMessage (and chat.update, chat.unfurl) through slack_sdk's
async client."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.transports import DeliveryError, SlackCall

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


class SlackTransport:
    def __init__(self, token: str, base_url: str, timeout: float = 10.0) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._client: AsyncWebClient | None = None

    def _web(self) -> AsyncWebClient:
        # One aiohttp session for every call; slack_sdk retries connection errors (its default
        # handler). Server errors and 429 are retried by the outbox, the one place for retries.
        if self._client is None:
            self._client = AsyncWebClient(
                # slack_sdk annotates whole seconds; aiohttp, which applies it, takes a float.
                token=self._token, base_url=self._base_url,
                timeout=self._timeout,  # type: ignore[arg-type]
                session=aiohttp.ClientSession(),
                retry_handlers=[AsyncConnectionErrorRetryHandler()],
            )
        return self._client

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
        web = self._web()
        try:
            try:
                response = await web.api_call(method, json=args)
            except SlackApiError as exc:
                if exc.response.get("error") != "not_in_channel" or "channel" not in args:
                    raise
                # A public channel the bot has not joined: join it once, then post again.
                # Private channels answer method_not_supported_for_channel_type: a person
                # must invite the bot (https://docs.slack.dev/reference/methods/conversations.join).
                await web.conversations_join(channel=args["channel"])
                response = await web.api_call(method, json=args)
        except SlackApiError as exc:
            raise _classify(exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}: {exc}") from None
        return str(response.get("ts")) if response.get("ts") else None

    async def idle(self) -> None:
        return None

    async def close(self) -> None:
        if self._client is not None and self._client.session is not None:
            await self._client.session.close()
        self._client = None


def _classify(exc: SlackApiError) -> DeliveryError:
    status = exc.response.status_code
    error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
    if status == 429:
        retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
        return DeliveryError(f"Slack rate limit: retry after {retry_after:g} s",
                             retry_after=retry_after)
    if status >= 500:
        return DeliveryError(f"Slack server error: HTTP {status}")
    hint = HINTS.get(str(error), "")
    return DeliveryError(f"Slack error: {error or f'HTTP {status}'}{hint}",
                         permanent=error in PERMANENT or (400 <= status < 500 and status != 429))
