"""`[slack] timeout`: a Web API call unanswered for that long is given up on and retried."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import ROUTES, Desk, desk_config, titles


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    """On the real clock: the timeout is a real second of waiting for a real server."""
    service = Service(desk_config(
        tmp_path, sqlite_url, slack, smtp[1],
        slack={"pacing": "0s", "batch_window": "0s", "timeout": "1s", "routes": ROUTES},
        delivery={"retry_base": "50ms", "retry_cap": "100ms"},
    ))
    yield Desk(service, slack, smtp[0], lambda: datetime.now(UTC))  # type: ignore[arg-type]
    await service.close()


async def test_a_slack_server_slower_than_the_timeout_is_given_up_on_and_retried(
    desk: Desk,
) -> None:
    desk.slack.pause("chat.postMessage")  # holds the call unanswered until resumed
    await desk.ingest(story(id="slow", title="Title of slow"))
    started = time.monotonic()
    assert await desk.service.dispatcher.pass_once() == 1
    await desk.service.dispatcher.finish(grace=30)  # the attempt in flight ends
    waited = time.monotonic() - started
    [row] = await desk.deliveries()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "did not answer within 1 s" in row.last_error
    assert 1.0 <= waited < 10, waited  # given up on after `timeout`, not aiohttp's 300 s

    # The server answers again. The held call goes through now, late, as a post that reached
    # Slack after its caller gave up would: the row is posted again (docs/decisions.md, "The
    # Slack timeout").
    desk.slack.resume("chat.postMessage")
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [row] = await desk.deliveries()
    assert (row.status, row.attempts) == ("sent", 2)
    posts = desk.slack.posts()
    assert [titles(c.body) for c in posts] == [["slow"], ["slow"]]
