"""Claim presses as Slack sends them: signed `block_actions` requests to POST /slack/events.

A press is the form body Slack posts when a person presses Claim on a message (`payload=` JSON
naming the message, the person, the button's block and action ids from
templates/slack/alert.json.j2, and a response_url), signed with Slack's v0 scheme (HMAC-SHA256
over `v0:<timestamp>:<raw body>` with the signing secret). `press_all` sends them from a number
of concurrent clients, each pressing the next one as soon as its last was answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from tests.fakes import slack_signature

SECRET = "bench-signing-secret"  # the service gets it as SLACK_SIGNING_SECRET


@dataclass
class Press:
    story_id: str
    channel: str
    ts: str
    user: str

    def body(self, sink: str, serial: int) -> str:
        """The form body Slack sends when this person presses Claim on this message."""
        payload = {
            "type": "block_actions", "team": {"id": "T0BENCH"}, "api_app_id": "A0BENCH",
            "user": {"id": self.user, "username": self.user.lower(), "name": self.user.lower(),
                     "team_id": "T0BENCH"}, "token": "x",
            "trigger_id": f"{serial}.1.bench",
            "container": {"type": "message", "message_ts": self.ts, "channel_id": self.channel,
                          "is_ephemeral": False},
            "channel": {"id": self.channel}, "message": {"type": "message", "ts": self.ts},
            "response_url": f"{sink}/response/{serial}",
            "actions": [{"type": "button", "block_id": f"item:{self.story_id}",
                         "action_id": "item_claim", "value": self.story_id, "style": "primary",
                         "text": {"type": "plain_text", "text": "Claim"},
                         "action_ts": f"{time.time():.6f}"}]}
        return urlencode({"payload": json.dumps(payload)})


async def press_all(url: str, sink: str, presses: list[Press], clients: int
                    ) -> list[tuple[float, float]]:
    """Press each once from `clients` concurrent clients; (sent, answered) monotonic times."""
    todo: Iterator[tuple[int, Press]] = iter(enumerate(presses))
    times: list[tuple[float, float]] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            for serial, press in todo:  # one iterator shared by all: each press once
                body = press.body(sink, serial)
                stamp = str(int(time.time()))
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Slack-Request-Timestamp": stamp,
                           "X-Slack-Signature": slack_signature(SECRET, stamp, body)}
                sent = time.monotonic()
                async with session.post(url, data=body.encode(), headers=headers) as answer:
                    content = await answer.read()
                    answered = time.monotonic()
                if answer.status != 200 or content:
                    raise RuntimeError(f"press {press.story_id}: {answer.status} {content!r}")
                times.append((sent, answered))

        await asyncio.gather(*(client() for _ in range(clients)))
    return times
