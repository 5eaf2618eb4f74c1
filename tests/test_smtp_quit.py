"""A relay slow to answer QUIT holds up no delivery.

When the queue runs dry the SMTP session is closed with a QUIT, which waits for the relay's
reply (up to the SMTP timeout, 30 s). The delivery loop once awaited it: the next alert, Slack's
too, waited behind a slow relay's goodbye. A real SMTP conversation on loopback here, from a
relay that accepts mail and answers QUIT only when the test lets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.harness import ROUTES, Desk, desk_config


class HoldingRelay:
    """Speaks enough SMTP for aiosmtplib; holds every QUIT until `answer_quit` is set."""

    def __init__(self) -> None:
        self.messages = 0
        self.received = asyncio.Condition()
        self.quits = 0
        self.quit_seen = asyncio.Event()
        self.answer_quit = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.answer_quit.set()
        if self.server is not None:
            self.server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                    while (await reader.readline()) not in (b".\r\n", b""):
                        pass
                    writer.write(b"250 queued\r\n")
                    async with self.received:
                        self.messages += 1
                        self.received.notify_all()
                elif verb == b"QUIT":
                    self.quits += 1
                    self.quit_seen.set()
                    await self.answer_quit.wait()
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:  # EHLO, MAIL, RCPT, RSET, NOOP
                    writer.write(b"250 relay.test\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def relay() -> AsyncIterator[HoldingRelay]:
    relay = HoldingRelay()
    await relay.start()
    yield relay
    await relay.close()


async def test_a_relay_holding_its_quit_answer_does_not_hold_up_the_next_alert(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack, relay: HoldingRelay,
) -> None:
    assert relay.server is not None
    port = int(relay.server.sockets[0].getsockname()[1])
    service = Service(desk_config(
        tmp_path, sqlite_url, slack, port,
        slack={"pacing": "0s", "batch_window": "0s", "routes": ROUTES},
        email={"batch_window": "0s"},
    ))
    desk = Desk(service, slack, None, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    worker = asyncio.create_task(service.dispatcher.run())
    try:
        await desk.subscribe("reader@desk.example")
        await desk.ingest(story(id="first"))
        # The email goes, the queue runs dry, and the session's QUIT waits on the relay.
        await asyncio.wait_for(relay.quit_seen.wait(), 10)
        assert relay.messages == 1
        slack_before = len(slack.posts())

        await desk.ingest(story(id="second"))
        # Slack's post and the email both go while the first QUIT is still unanswered.
        posts = await asyncio.to_thread(slack.wait_for_posts, slack_before + 1, 5.0)
        assert len(posts) > slack_before
        async with relay.received:  # before the fix: not until the QUIT's 30 s timeout
            await asyncio.wait_for(relay.received.wait_for(lambda: relay.messages == 2), 5)
        assert not relay.answer_quit.is_set()
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        relay.answer_quit.set()
        await service.close()
