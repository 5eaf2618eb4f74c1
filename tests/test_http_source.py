"""The `http` source against a local feed: cursor, ETag, and a bad feed delaying only itself."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.service import Service
from tests.conftest import make_config, story
from tests.fakes import FakeFeed, FakeSlack
from tests.process import Alertbot


@pytest.fixture
def feed() -> Iterator[FakeFeed]:
    server = FakeFeed().start()
    yield server
    server.stop()


async def test_the_cursor_and_etag_are_sent_and_a_304_costs_no_processing(
    tmp_path: Path, sqlite_url: str, feed: FakeFeed,
) -> None:
    now = datetime.now(UTC)
    first = [story(id="a", scored_at=(now - timedelta(minutes=5)).isoformat()),
             story(id="b", scored_at=(now - timedelta(minutes=2)).isoformat())]
    feed.stories = first
    config = make_config(tmp_path, sqlite_url, {"sources": [
        {"kind": "http", "url": feed.url("/feed"), "poll_interval": "30s"}]})
    service = Service(config)
    try:
        report = await service.poll(0)
        assert sorted(report.accepted) == ["a", "b"]
        [request] = feed.requests
        assert (request.since, request.if_none_match) == (None, None)

        again = await service.poll(0)  # nothing new upstream: 304, nothing parsed or stored
        assert (again.accepted, again.unchanged, again.rejected) == ([], [], [])
        assert feed.requests[1].if_none_match == '"v1"'
        assert feed.requests[1].since == datetime.fromisoformat(first[1]["scored_at"]
                                                                ).isoformat()

        feed.stories, feed.etag = [*first, story(id="c", scored_at=now.isoformat())], '"v2"'
        newer = await service.poll(0)
        assert newer.accepted == ["c"] and sorted(newer.unchanged) == ["a", "b"]
        assert feed.requests[2].if_none_match == '"v1"'
        assert feed.requests[3:] == []
        assert (await service.poll(0)).accepted == []
        assert feed.requests[3].since == now.isoformat()
        assert feed.requests[3].if_none_match == '"v2"'
    finally:
        await service.close()


def test_a_failing_or_hanging_feed_delays_only_itself(
    tmp_path: Path, feed: FakeFeed, slack: FakeSlack,
) -> None:
    feed.stories = [story(id="good", title="Title of good")]
    toml = "\n".join(
        f'[[sources]]\nkind = "http"\nurl = "{feed.url(path)}"\npoll_interval = "1s"\n'
        f'timeout = "2s"\n' for path in ("/hanging", "/broken", "/feed")
    ) + '\n[slack]\npacing = "0s"\nbatch_window = "0s"\n[[slack.routes]]\nchannel = "C0SPACEOPS"\n'
    bot = Alertbot.make(tmp_path, toml, slack_url=slack.url).start()
    try:
        started = time.monotonic()
        [post] = slack.wait_for_posts(1, timeout=10)
        assert "Title of good" in post.body["text"]
        assert post.at - started < 3  # not held up by the feed that hangs for 60 s
        feed.wait_for_requests("/feed", 9, timeout=20)
        # The good feed keeps its 1 s rhythm; the broken one backs off (1 s, 2 s, 4 s … with
        # jitter, on the scheduler's 1 s beat), so it is asked less and waits longer.
        good, broken = feed.to("/feed"), [r.at for r in feed.to("/broken")]
        assert len(broken) <= len(good) - 3
        assert max(later - earlier for earlier, later in itertools.pairwise(broken)) >= 3
        assert len(feed.to("/hanging")) <= 4  # each poll waits out its 2 s timeout
        # /readyz stays ready (the feeds are not this replica's fault) and names both.
        ready = httpx.get(f"{bot.url}/readyz")
        assert ready.status_code == 200
        degraded = ready.json()["degraded"]
        assert degraded[f"source {feed.url('/broken')}"].startswith(
            "answered HTTP 500 Internal Server Error (")
        assert degraded[f"source {feed.url('/hanging')}"].startswith(
            "did not answer within 2 s (")
        assert f"source {feed.url('/feed')}" not in degraded
    finally:
        bot.stop()
    log = bot.log()
    assert "answered HTTP 500 Internal Server Error; next try in" in log
    assert "did not answer within 2 s" in log
