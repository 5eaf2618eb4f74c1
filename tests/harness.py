"""An in-process alertbot wired to the local Slack server and the loopback SMTP server."""

from __future__ import annotations

import email
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from bot import outbox
from bot.pipeline import Report
from bot.readers import subscribers
from bot.service import Service
from bot.stories.parsing import parse_batch
from bot.web.app import create_app
from bot.web.preferences import PreferenceDoor
from tests.conftest import make_config
from tests.fakes import FakeSlack, SmtpRecorder

ROUTES = [{"channel": "C0SPACEOPS"},
          {"channel": "C0LAUNCHES", "topics": ["launch"], "min_impact": 9}]


class Clock:
    """A clock tests move by hand; the service reads it wherever it needs `now`."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Desk:
    service: Service
    slack: FakeSlack
    smtp: SmtpRecorder
    clock: Clock

    async def ingest(self, *stories: dict[str, Any]) -> Report:
        batch = parse_batch(json.dumps(list(stories)))
        return await self.service.pipeline.ingest(batch, "test", self.clock())

    async def subscribe(self, address: str, topics: tuple[str, ...] = ()) -> None:
        subscriber = subscribers.validate(address, "instant", "UTC", topics, "07:00")
        await self.service.db.write(subscribers.add, subscriber, datetime.now(UTC))

    async def deliveries(self, status: str | None = None) -> list[Any]:
        return await self.service.db.read(outbox.listing, status)

    def web(self) -> httpx.AsyncClient:
        """The service's HTTP app, in process (for the unsubscribe endpoints)."""
        service = self.service
        app = create_app(service.push, service.ready, None, None, service.unsubscribe,
                         preferences=PreferenceDoor(service.db, service.dispatcher.key,
                                                    service.clock))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot")

    def emails(self, to: str | None = None) -> list[EmailMessage]:
        found = []
        for _sender, recipients, content in self.smtp.messages:
            if to is None or to in recipients:
                found.append(email.message_from_bytes(content, policy=policy.default))
        return found  # type: ignore[return-value]


def desk_config(tmp_path: Path, database_url: str, fake_slack: FakeSlack, smtp_port: int,
                **desk: Any) -> Any:
    desk.setdefault("slack", {"pacing": "0s", "batch_window": "30s", "routes": ROUTES})
    return make_config(
        tmp_path, database_url, desk,
        slack_bot_token="xoxb-test-token", slack_api_url=fake_slack.url,
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none",
        email_from="Alerts <alerts@desk.example>", public_url="https://alerts.desk.example",
    )


def titles(call_body: dict[str, Any]) -> list[str]:
    """The story ids a Slack message shows (fixture titles are 'Title of <id>')."""
    return sorted(set(re.findall(r"Title of ([a-z0-9-]+)", json.dumps(call_body["blocks"]))))
