"""The Slack app door (docs/slack-app.md): Bolt, served at POST /slack/events in the
service's HTTP server.

Thin: each command lives in its own module with a `register(app, …)` function, and reads
through the same archive as the CLI. Every listener acks at once, before any network or database
call, and answers through response_url (replies.py); the clock is read once per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.metrics import Metrics
from bot.settings import Config
from bot.slack_app import (
    actionitems,
    alerts,
    buttons,
    claims,
    dismiss,
    done,
    home,
    home_edits,
    menu,
    story,
    unfurls,
)
from bot.slack_app.replies import Clock, utcnow

log = logging.getLogger(__name__)


def create_slack_app(config: Config, db: Database, wake: Callable[[], None],
                     clock: Clock = utcnow, metrics: Metrics | None = None
                     ) -> AsyncApp | None:
    """Bolt with our commands, or None (said once) when credentials are missing.

    HTTP mode needs SLACK_SIGNING_SECRET; Socket Mode (SLACK_APP_TOKEN) does not, since its
    payloads arrive over an authenticated WebSocket rather than signed requests.
    """
    settings = config.settings
    secret = settings.slack_signing_secret
    if settings.slack_bot_token is None or (secret is None and settings.slack_app_token is None):
        log.warning("slash commands disabled: they need SLACK_BOT_TOKEN and either "
                    "SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)")
        return None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                            base_url=settings.slack_api_url)
    # process_before_response: Bolt awaits each listener's ack half and then answers, instead
    # of polling every 10 ms for ack() (which set a 10 ms floor under every command). The ack
    # half only acks; the work runs in the lazy half, after the answer (replies.py).
    app = AsyncApp(client=client, process_before_response=True,
                   signing_secret=secret.get_secret_value() if secret else "")
    story.register(app, db, config.desk.slack.commands)
    actionitems.register(app, db, config.desk.slack.commands, clock)
    alerts.register(app, db, config.desk, clock)
    buttons.register(app, db, wake, clock)
    presses = claims.Presses.of(db, config.desk, clock, wake,
                                None if metrics is None else metrics.claim_seconds.observe)
    claims.register(app, presses)
    dismiss.register(app, db, config.desk, clock, wake)
    home.register(app, db, config.desk, clock)
    home_edits.register(app, db, config.desk, clock)
    unfurls.register(app, db, config.desk.slack.unfurl_domains, wake, clock)
    done.register(app, db, config.desk, clock, wake)
    menu.register(app, presses)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack request failed (%s): %r", body.get("command") or body.get("type"),
                  error)

    return app

