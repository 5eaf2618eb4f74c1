"""A relay slow to answer QUIT holds up no Slack message, and its one session stays one.

When the queue runs dry the SMTP session is closed with a QUIT, which waits for the relay's
reply (up to the SMTP timeout, 30 s). The delivery loop once awaited it: the next alert,
Slack's too, waited behind a slow relay's goodbye. Now the QUIT runs beside the loop; the
session still counts against `[email] connections` (1) until the relay answers, so the next
email waits for it rather than open a second session the relay may refuse. A real SMTP
conversation on loopback, from a relay that answers QUIT only when the test lets it.
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
        self.sessions = 0  # connections accepted
        self.open_now = 0
        self.most_at_once = 0
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
        self.sessions += 1
        self.open_now += 1
        self.most_at_once = max(self.most_at_once, self.open_now)
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
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def relay() -> AsyncIterator[HoldingRelay]:
    relay = HoldingRelay()
    await relay.start()
    yield relay
    await relay.close()


async def test_a_relay_holding_its_quit_answer_holds_up_no_slack_message(
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
        # Slack's post goes while the first QUIT is still unanswered (it once waited for it).
        posts = await asyncio.to_thread(slack.wait_for_posts, slack_before + 1, 5.0)
        assert len(posts) > slack_before
        assert not relay.answer_quit.is_set()
        # The second email waits for the one slot (its task queued on the transport's
        # condition), where it once opened a second session beside the quitting one.
        email = service.dispatcher.transports["email"]
        freed = getattr(email, "_freed", None)
        for _ in range(500):
            if relay.sessions > 1 or (freed is not None and freed._waiters):
                break
            await asyncio.sleep(0.01)
        assert (relay.messages, relay.sessions) == (1, 1)
        relay.answer_quit.set()
        async with relay.received:
            await asyncio.wait_for(relay.received.wait_for(lambda: relay.messages == 2), 5)
        assert relay.sessions == 2  # one after the other, never two at once
        assert relay.most_at_once == 1
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        relay.answer_quit.set()
        await service.close()
