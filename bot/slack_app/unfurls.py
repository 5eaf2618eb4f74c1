"""Link previews (docs/slack-app.md, "Link previews"): a story link shared in Slack, in one of
`[slack] unfurl_domains`, unfurls into the story's impact, corroboration, sentiment and first
key facts.

Slack sends `link_shared` for links in the domains the app registered. The listener acks at
once; then it finds the stories by URL and queues one `unfurl` outbox row for the event, keyed
by Slack's `event_id`. Slack sends an event again when it thinks it went unanswered
(`X-Slack-Retry-Num`); the retry, on this replica or another, finds the key taken and queues
nothing. The delivery workers make the `chat.unfurl` call, paced and retried like any message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from slack_bolt.async_app import AsyncApp
from sqlalchemy.exc import IntegrityError

from bot import outbox
from bot.db import Database
from bot.slack_app.replies import Clock, ack_at_once
from bot.stories import search

log = logging.getLogger(__name__)


def shared_links(event: dict[str, Any], domains: Sequence[str]) -> list[str]:
    """The event's links in `domains` (a subdomain of one counts), in order, each once.
    Slack sends links in the domains the app registered; `[slack] unfurl_domains` may list
    fewer, and only those unfurl."""
    found: list[str] = []
    for link in event.get("links") or ():
        url = link.get("url") if isinstance(link, dict) else None
        if not isinstance(url, str) or url in found:
            continue
        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:  # a malformed URL (an unclosed IPv6 bracket): not ours
            continue
        if any(host == domain or host.endswith(f".{domain}") for domain in domains):
            found.append(url)
    return found


async def queue_unfurl(db: Database, body: dict[str, Any], domains: Sequence[str],
                       now: datetime) -> bool:
    """Queue the previews of the event's story links; False when there is nothing to unfurl
    (no link in `domains`, no story under those URLs) or the event was queued already."""
    event, event_id = body.get("event") or {}, body.get("event_id")
    urls = shared_links(event, domains)
    # A draft in the message composer has no ts yet: Slack names it by unfurl_id and source.
    draft = event.get("source") == "composer"
    mark = event.get("unfurl_id") if draft else event.get("message_ts")
    channel = event.get("channel")
    if not urls or not all(isinstance(v, str) for v in (event_id, mark, channel)):
        return False  # nothing to unfurl, or nothing chat.unfurl could name
    where = {"unfurl_id": str(mark), "source": "composer"} if draft else {"ts": str(mark)}
    found = await db.read(search.by_urls, urls)
    if not found:
        return False  # a link to a page that is no story: Slack shows its own preview
    try:
        return await db.write(outbox.enqueue_unfurl, str(event_id), str(channel), found,
                              where, str(event.get("user", "?")), now)
    except IntegrityError:  # the same event queued at this moment by another replica
        return False


def register(app: AsyncApp, db: Database, domains: Sequence[str], wake: Callable[[], None],
             clock: Clock) -> None:
    async def unfurl(body: dict[str, Any]) -> None:
        # Registered even with no domains, so the event is acked rather than answered 404,
        # which Slack would retry and count against the app.
        if not domains:
            return
        try:
            if await queue_unfurl(db, body, domains, clock()):
                wake()
        except Exception:  # nobody waits on an unfurl: log it, Slack shows its own preview
            log.exception("could not queue the previews of a shared link")

    app.event("link_shared")(ack=ack_at_once, lazy=[unfurl])
