"""Serving: the HTTP app and Slack connection a running service answers on, and the server.

`Service.run` calls these in order: warn about settings, build the doors, serve until stopped.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import TYPE_CHECKING

import uvicorn
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from starlette.applications import Starlette

from bot.settings import Config, Settings
from bot.slack_app import create_slack_app
from bot.web.app import create_app
from bot.web.limits import HOUR, ClientLimit
from bot.web.preferences import PreferenceDoor
from bot.web.signup import SignupDoor

if TYPE_CHECKING:
    from bot.service.core import Service

log = logging.getLogger(__package__)  # "bot.service", as the log lines have always said


def warn_about(config: Config) -> None:
    """Say once, at start, what the settings leave refused or risky."""
    if not config.settings.ingest_token:
        log.warning("no ALERTBOT_INGEST_TOKEN: POST /api/stories answers 401")
    lease, timeout = config.desk.delivery.lease, config.desk.slack.timeout
    if lease <= 2 * timeout:  # a Slack send may take two calls (one retry on a reset)
        log.warning("[delivery] lease (%s s) is not longer than two Slack calls (2 × [slack] "
                    "timeout = %s s): a send still in progress when its lease runs out is "
                    "sent again", lease.total_seconds(), 2 * timeout.total_seconds())


def doors(service: Service) -> tuple[Starlette, AsyncSocketModeHandler | None]:
    """The HTTP app, and the Socket Mode connection when SLACK_APP_TOKEN is set (then Slack
    sends over a WebSocket instead of POST /slack/events)."""
    settings = service.config.settings
    slack = create_slack_app(service.config, service.db, service.wake, service.clock,
                             service.metrics)
    socket_mode = None
    if slack is not None and settings.slack_app_token is not None:
        socket_mode = AsyncSocketModeHandler(slack, settings.slack_app_token.get_secret_value())
    token, secret = settings.ingest_token, settings.slack_signing_secret
    app = create_app(service.push, service.ready, token.get_secret_value() if token else None,
                     None if socket_mode else slack, service.unsubscribe, service.exposition,
                     signing_secret=secret.get_secret_value() if secret else "",
                     answered=service.metrics.commands_answered,
                     preferences=PreferenceDoor(service.db, service.dispatcher.key,
                                                service.clock),
                     action_items=service.action_items,
                     limit=ClientLimit(proxies=settings.trusted_proxies),
                     signup=signup_door(service))
    return app, socket_mode


def signup_door(service: Service) -> SignupDoor | None:
    """The sign-up pages' wiring, or None (no pages) when `[email] signup_domains` is empty."""
    email, settings = service.config.desk.email, service.config.settings
    if not email.signup_domains:
        return None
    limit = ClientLimit(email.signup_per_client, proxies=settings.trusted_proxies,
                        window=HOUR)
    return SignupDoor(service.db, service.dispatcher.key, service.clock, email.signup_domains,
                      email.digest_hour, limit, service.wake)


def http_server(app: Starlette, settings: Settings) -> uvicorn.Server:
    # proxy_headers off: uvicorn otherwise believes X-Forwarded-For from loopback, so a client
    # behind a local proxy could pick its own address past the pages' limits. Who is a proxy
    # is ALERTBOT_TRUSTED_PROXIES's to say, and bot/web/limits.py reads the header by it.
    return uvicorn.Server(uvicorn.Config(
        app, host=settings.http_host, port=settings.http_port, log_level="warning",
        access_log=False, lifespan="off", proxy_headers=False,
    ))


async def serve(server: uvicorn.Server, socket_mode: AsyncSocketModeHandler | None,
                settings: Settings) -> None:
    """Connect to Slack if in Socket Mode, then serve HTTP until SIGTERM or cancellation."""
    if socket_mode is not None:
        await socket_mode.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack app connected in Socket Mode")
    log.info("alertbot listening on http://%s:%s", settings.http_host, settings.http_port)
    # Start-up left ~125,000 objects (Bolt, SQLAlchemy, pydantic, templates) that live as long
    # as the process; a full garbage collection scanned them all, stalling the event loop
    # ~60 ms, and that showed as the slowest slash-command answers. Frozen, collections scan
    # only what was made after.
    gc.collect()
    gc.freeze()
    if threading.current_thread() is threading.main_thread():
        # uvicorn catches SIGTERM, stops, then raises it again for whoever handled it before;
        # by default that kills the process before what is in flight settles.
        signal.signal(signal.SIGTERM, lambda number, frame: None)
    await server.serve()
