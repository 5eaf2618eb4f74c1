"""Peers misbehave: Slack 429 and 500, SMTP 451 and 550. Everything is delivered once or dead."""

from __future__ import annotations

import email
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from bot import outbox
from bot.messages.kinds import KINDS
from bot.readers import subscribers
from bot.service import Service
from bot.stories.parsing import parse_batch
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Desk, desk_config, titles

Factory = Callable[..., Desk]


@pytest.fixture
async def make_desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
                    smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Factory]:
    """A desk on the real clock: these tests measure real waits (Retry-After, pacing)."""
    services: list[Service] = []

    def build(**desk: object) -> Desk:
        service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1], **desk))
        services.append(service)
        return Desk(service, slack, smtp[0], lambda: datetime.now(UTC))  # type: ignore[arg-type]

    yield build
    for service in services:
        await service.close()


async def test_a_429_waits_retry_after_then_delivers_once(make_desk: Factory) -> None:
    desk = make_desk()
    desk.slack.fail_next("chat.postMessage", status=429, retry_after=2)
    await desk.ingest(story(id="rl", title="Title of rl"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    refused, delivered = desk.slack.posts()
    assert delivered.at - refused.at >= 2.0
    assert titles(delivered.body) == ["rl"]
    [row] = await desk.deliveries()
    assert (row.status, row.attempts) == ("sent", 1)  # a rate limit is not a failed attempt


async def test_slack_500_three_times_then_ok_delivers_once(make_desk: Factory) -> None:
    desk = make_desk()
    desk.slack.fail_next("chat.postMessage", times=3, status=500)
    await desk.ingest(story(id="flaky", title="Title of flaky"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    assert [c.body["channel"] for c in desk.slack.posts()] == ["C0SPACEOPS"] * 4
    [row] = await desk.deliveries()
    assert (row.status, row.attempts) == ("sent", 4)


async def test_a_permanent_slack_error_makes_the_row_dead_with_the_reason(
    make_desk: Factory,
) -> None:
    desk = make_desk()
    desk.slack.fail_next("chat.postMessage", error="channel_not_found")
    await desk.ingest(story(id="gone"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [row] = await desk.deliveries()
    assert row.status == "dead"
    assert row.last_error == "Slack error: channel_not_found (check the channel ID in the route)"
    assert len(desk.slack.posts()) == 1


async def test_one_channel_never_gets_two_messages_within_the_pacing_gap(
    make_desk: Factory,
) -> None:
    desk = make_desk(slack={"pacing": "300ms", "batch_window": "0s",
                            "routes": [{"channel": "C0SPACEOPS"}]})
    for n in range(3):
        await desk.ingest(story(id=f"p{n}"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    times = [c.at for c in desk.slack.posts()]
    assert len(times) == 3
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))


async def test_smtp_451_is_retried_and_delivered_once(make_desk: Factory) -> None:
    desk = make_desk()
    await desk.subscribe("later@desk.example")
    desk.smtp.transient["later@desk.example"] = 1
    await desk.ingest(story(id="mail", title="Title of mail"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [message] = desk.emails("later@desk.example")
    assert str(message["Subject"]) == "[Action item] Title of mail"
    [row] = [r for r in await desk.deliveries() if r.transport == "email"]
    assert (row.status, row.attempts) == ("sent", 2)


async def test_smtp_550_kills_only_that_recipients_row(make_desk: Factory) -> None:
    desk = make_desk()
    for name in ("a", "nobody", "c"):
        await desk.subscribe(f"{name}@desk.example")
    desk.smtp.refuse["nobody@desk.example"] = "550 5.1.1 No such user here"
    await desk.ingest(story(id="mail"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    rows = {r.target: r for r in await desk.deliveries() if r.transport == "email"}
    assert rows["email:nobody@desk.example"].status == "dead"
    assert rows["email:nobody@desk.example"].last_error == "SMTP 550 5.1.1 No such user here"
    assert rows["email:a@desk.example"].status == rows["email:c@desk.example"].status == "sent"
    assert sorted(r for _, rcpts, _ in desk.smtp.messages for r in rcpts) == [
        "a@desk.example", "c@desk.example"]


async def test_one_smtp_connection_carries_a_batch(make_desk: Factory) -> None:
    desk = make_desk(delivery={"workers": 1, "retry_base": "50ms"})
    for n in range(5):
        await desk.subscribe(f"r{n}@desk.example")
    await desk.ingest(story(id="batch"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    assert len(desk.smtp.messages) == 5
    assert desk.smtp.connections == 1


async def test_with_two_smtp_connections_a_batch_uses_two_and_reuses_them(
    make_desk: Factory,
) -> None:
    desk = make_desk(delivery={"workers": 8}, email={"batch_window": "30s", "connections": 2})
    for n in range(12):
        await desk.subscribe(f"r{n}@desk.example")
    await desk.ingest(story(id="batch"))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    assert sorted(r for _, rcpts, _ in desk.smtp.messages for r in rcpts) == sorted(
        f"r{n}@desk.example" for n in range(12))
    assert desk.smtp.connections == 2  # opened while eight were in flight, then reused


async def test_a_rendering_bug_counts_as_a_failed_attempt_and_ends_dead(
    make_desk: Factory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    desk = make_desk(delivery={"max_attempts": 2, "retry_base": "10ms"})

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a template bug")

    monkeypatch.setattr(KINDS["alert"], "slack", broken)  # the alert kind's Slack rendering
    await desk.ingest(story(id="bug"))
    await desk.service.dispatcher.drain(timedelta(seconds=5))
    [row] = await desk.deliveries()
    assert (row.status, row.attempts) == ("dead", 2)
    assert "internal error: KeyError" in row.last_error
    assert desk.slack.posts() == []


async def test_the_bot_joins_a_public_channel_it_is_not_in_and_posts(make_desk: Factory
                                                                     ) -> None:
    desk = make_desk()
    desk.slack.fail_next("chat.postMessage", error="not_in_channel")
    await desk.ingest(story(id="join", title="Title of join"))
    await desk.service.dispatcher.drain(timedelta(seconds=5))
    assert [c.method for c in desk.slack.calls] == [
        "chat.postMessage", "conversations.join", "chat.postMessage"]
    assert desk.slack.calls[1].body["channel"] == "C0SPACEOPS"
    [row] = await desk.deliveries()
    assert row.status == "sent" and row.attempts == 1


async def test_a_private_channel_the_bot_is_not_in_is_dead_with_what_to_do(
    make_desk: Factory,
) -> None:
    desk = make_desk()
    desk.slack.fail_next("chat.postMessage", error="not_in_channel")
    desk.slack.fail_next("conversations.join", error="method_not_supported_for_channel_type")
    await desk.ingest(story(id="private"))
    await desk.service.dispatcher.drain(timedelta(seconds=5))
    [row] = await desk.deliveries()
    assert row.status == "dead"
    assert row.last_error == ("Slack error: method_not_supported_for_channel_type "
                              "(a private channel: invite the bot to it)")


async def one_at_a_time(service: Service, name: str, stories: int) -> list[Any]:
    """Ingest stories one by one (each an alert to every target), deliver all; the rows."""
    try:
        for n in range(stories):
            batch = parse_batch(json.dumps([story(id=f"{name}-{n}", title=f"Title of {name}-{n}")]))
            await service.pipeline.ingest(batch, "test", datetime.now(UTC))
        await service.dispatcher.drain(timedelta(seconds=60))
        return await service.db.read(outbox.listing, None, 2000)
    finally:
        await service.close()


async def test_a_storm_of_slack_faults_loses_nothing_and_keeps_each_channels_pace(
    tmp_path: Path, sqlite_url: str, smtp: tuple[SmtpRecorder, int],
) -> None:
    """30 % of posts fail at random (timeouts, resets, 500s, 429s) across 1,000 deliveries."""
    slack = FakeSlack(chaos=0.3, hang=0.6).start()
    channels = [f"C0ST{n:02d}" for n in range(40)]
    config = desk_config(
        tmp_path, sqlite_url, slack, smtp[1],
        # A generous timeout: the fake answers from threads of this process, and under load
        # an answer can come later than a short one; a post given up on after it arrived is
        # posted again (docs/decisions.md, "The Slack timeout"), which is not what this tests.
        # Its "timeout" faults end without an answer after `hang` either way.
        slack={"pacing": "100ms", "batch_window": "0s", "timeout": "10s",
               "routes": [{"channel": c} for c in channels]},
        delivery={"workers": 32, "retry_base": "50ms", "retry_cap": "500ms", "max_attempts": 50},
    )
    try:
        rows = await one_at_a_time(Service(config), "storm", 25)  # 25 × 40 channels
    finally:
        slack.stop()
    assert len(rows) == 1000 and {r.status for r in rows} == {"sent"}
    calls = slack.posts()
    faults = Counter(c.fault for c in calls if c.fault)
    assert set(faults) == {"timeout", "reset", "500", "429"}
    assert 0.2 < sum(faults.values()) / len(calls) < 0.4
    delivered = [c for c in calls if c.fault is None]
    assert len({(c.body["channel"], c.body["text"]) for c in delivered}) == 1000
    assert len(delivered) == 1000  # none lost, none twice
    for channel in channels:
        mine = sorted((c for c in calls if c.body["channel"] == channel), key=lambda c: c.at)
        for earlier, later in itertools.pairwise(mine):
            if earlier.fault == "reset":
                continue  # slack_sdk re-sends a call whose connection broke, at once
            wait = 1.0 if earlier.fault == "429" else 0.1  # Retry-After, else the pacing
            assert later.at - earlier.at >= wait - 0.01, (channel, earlier.fault)


async def test_a_storm_of_smtp_faults_loses_nothing(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack, smtp: tuple[SmtpRecorder, int],
) -> None:
    """30 % of messages meet 421 (and a hang-up), 451, or a dropped connection, mid-batch."""
    recorder, port = smtp
    recorder.chaos = 0.3
    config = desk_config(tmp_path, sqlite_url, slack, port,
                         slack={"pacing": "0s", "batch_window": "0s", "routes": []},
                         email={"batch_window": "0s", "connections": 2},
                         delivery={"workers": 8, "retry_base": "20ms", "retry_cap": "200ms",
                                   "max_attempts": 50})
    service = Service(config)
    for n in range(100):
        await service.db.write(subscribers.add, subscribers.validate(
            f"r{n}@desk.example", "instant", "UTC", (), "07:00"), datetime.now(UTC))
    rows = await one_at_a_time(service, "mail", 10)  # 10 stories × 100 subscribers
    assert len(rows) == 1000 and {r.status for r in rows} == {"sent"}
    assert set(recorder.faults) == {"421", "451", "drop"}
    assert sum(recorder.faults.values()) > 200
    received = [(rcpts[0], email.message_from_bytes(raw, policy=policy.default)["Subject"])
                for _, rcpts, raw in recorder.messages]
    assert len(set(received)) == 1000 and len(received) == 1000  # none lost, none twice
