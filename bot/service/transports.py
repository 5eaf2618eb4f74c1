"""The transports a service sends through, keyed by the outbox row's `transport`."""

from __future__ import annotations

import logging

from bot.settings import Config
from bot.transports import Transport
from bot.transports.files import EmailFileTransport, SlackFileTransport
from bot.transports.slack import SlackTransport
from bot.transports.smtp import SmtpTransport

log = logging.getLogger(__package__)  # "bot.service", as the log lines have always said


def build_transports(config: Config) -> dict[str, Transport]:
    """Real transports where credentials exist, else writers under the outbox folder (said once)."""
    settings = config.settings
    transports: dict[str, Transport] = {}
    if settings.slack_bot_token is not None:
        transports["slack"] = SlackTransport(
            settings.slack_bot_token.get_secret_value(), settings.slack_api_url,
            timeout=config.desk.slack.timeout.total_seconds(),
        )
    else:
        folder = settings.outbox_dir / "slack"
        log.warning("no SLACK_BOT_TOKEN: Slack messages are written to %s/", folder)
        transports["slack"] = SlackFileTransport(folder)
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        transports["email"] = SmtpTransport(
            settings.smtp_host, settings.smtp_port, settings.smtp_security,
            settings.smtp_username, password, connections=config.desk.email.connections,
        )
    else:
        folder = settings.outbox_dir / "email"
        log.warning("no SMTP_HOST: emails are written to %s/ as .eml files", folder)
        transports["email"] = EmailFileTransport(folder)
    return transports
