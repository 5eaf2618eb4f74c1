"""Every edge of the rule (docs/stories.md) end to end: stories in, exactly the expected
Slack posts and emails out."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from bot.readers import subscribers
from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config, titles

NOW = datetime.now(UTC)
FT = [{"outlet": "FT.com", "url": "https://www.ft.com/a"},
      {"outlet": "https://www.ft.com/content/b"}]


def item(story_id: str, **fields: Any) -> dict[str, Any]:
    return story(id=story_id, title=f"Title of {story_id}", **fields)


def two(*outlets: str) -> list[dict[str, str]]:
    return [{"outlet": o, "url": f"https://{o.lower()}.example/x"} for o in outlets]


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1]), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


def edges() -> list[dict[str, Any]]:
    """One story on each edge of the rule (docs/stories.md)."""
    return [
        item("impact-8", impact=8, sources=two("SpaceNews", "Reuters")),
        item("impact-7-9", impact=7.9, sources=two("SpaceNews", "Reuters", "AP")),
        item("one-outlet-twice", impact=9, sources=FT),
        item("verified-only", impact=8.5, sources=None, verified_by=3, topics=["budget"]),
        item("disagree-high", impact=8, verified_by=4, sources=two("SpaceNews", "Reuters")),
        item("disagree-low", impact=9, verified_by=1, sources=two("A", "B", "C")),
        item("too-old", impact=9, scored_at=(NOW - timedelta(hours=25)).isoformat()),
        item("versioned", impact=9, version=2, topics=["launch"]),
        item("gains-source", impact=8, version=1, sources=two("SpaceNews"),
             topics=["satellites"]),
    ]


async def test_each_edge_of_the_rule_produces_exactly_the_expected_messages(desk: Desk) -> None:
    await desk.subscribe("reader@desk.example")
    await desk.subscribe("budget@desk.example", topics=("budget",))
    first = await desk.ingest(*edges())
    # 4 action items: 4 to C0SPACEOPS, 1 to C0LAUNCHES, 4 to reader@, 1 to budget@.
    assert first.rejected == [] and first.matched == 10
    await desk.service.check()

    [batch] = desk.slack.posts("C0SPACEOPS")
    assert titles(batch.body) == ["disagree-high", "impact-8", "verified-only", "versioned"]
    assert batch.body["blocks"][0]["text"]["text"] == "4 new action items"
    [launch] = desk.slack.posts("C0LAUNCHES")
    assert titles(launch.body) == ["versioned"]
    assert "route C0LAUNCHES (launch)" in launch.body["blocks"][-1]["elements"][0]["text"]
    assert [str(m["Subject"]) for m in desk.emails("reader@desk.example")] == [
        "4 new action items"]
    assert [str(m["Subject"]) for m in desk.emails("budget@desk.example")] == [
        "[Action item] Title of verified-only"]

    # An older and an equal version re-sent: ignored. The second source arrives: one alert.
    again = await desk.ingest(item("versioned", impact=9, version=1, topics=["launch"]),
                              item("versioned", impact=9, version=2, topics=["launch"]))
    assert again.accepted == [] and again.unchanged == ["versioned"]
    gained = await desk.ingest(item("gains-source", impact=8, version=2, topics=["satellites"],
                                    sources=two("SpaceNews", "Reuters")))
    assert gained.accepted == ["gains-source"] and gained.matched == 2
    await desk.service.check()
    later = desk.slack.posts("C0SPACEOPS")[1:]
    assert [titles(call.body) for call in later] == [["gains-source"]]
    assert later[0].body["text"].startswith("Action item: Title of gains-source")
    assert [str(m["Subject"]) for m in desk.emails("reader@desk.example")][1:] == [
        "[Action item] Title of gains-source"]

    # Another pass sends nothing, and every delivery row says it was sent, once.
    before = (len(desk.slack.posts()), len(desk.smtp.messages))
    await desk.service.check()
    assert (len(desk.slack.posts()), len(desk.smtp.messages)) == before == (3, 3)
    rows = await desk.deliveries()
    assert {row.status for row in rows} == {"sent"} and len(rows) == 6
    assert all(row.reason for row in rows)


async def test_several_items_arriving_together_go_as_one_batch_then_the_window_holds(
    desk: Desk,
) -> None:
    await desk.ingest(item("a"), item("b"), item("c"))
    await desk.service.dispatcher.drain(timedelta(0))
    [batch] = desk.slack.wait_for_posts(1)
    assert titles(batch.body) == ["a", "b", "c"]
    await desk.ingest(item("d"))
    await desk.service.dispatcher.drain(timedelta(0))
    assert len(desk.slack.posts()) == 1  # window open: "d" is held
    rows = await desk.deliveries()
    assert [row.kind for row in rows] == ["batch"]
    desk.clock.advance(29)
    assert await desk.service.pipeline.flush(desk.clock()) == 0
    desk.clock.advance(1)  # the window closes 30 s after the batch
    assert await desk.service.pipeline.flush(desk.clock()) == 1
    await desk.service.dispatcher.drain(timedelta(0))
    assert [titles(c.body) for c in desk.slack.posts()] == [["a", "b", "c"], ["d"]]


async def test_a_pushed_story_reaches_slack_without_waiting_for_a_poll(desk: Desk) -> None:
    worker = asyncio.create_task(desk.service.dispatcher.run())
    try:
        await desk.ingest(item("pushed", impact=9))
        posts = await asyncio.to_thread(desk.slack.wait_for_posts, 2, 5.0)
        assert sorted(p.body["channel"] for p in posts) == ["C0LAUNCHES", "C0SPACEOPS"]
        assert all(titles(p.body) == ["pushed"] for p in posts)
    finally:
        worker.cancel()
        await stopped(worker)


async def stopped(worker: asyncio.Task[None]) -> None:
    """`worker` ends within seconds of its cancel, cancelled (how the service stops it)."""
    done, _ = await asyncio.wait([worker], timeout=5)
    assert done == {worker} and worker.cancelled(), "the delivery loop went on after its stop"


async def test_the_delivery_loop_stops_when_a_wake_up_arrives_with_the_stop(desk: Desk) -> None:
    """A cancel landing in the same turn as a wake-up still ends the loop. It once did not
    (asyncio.wait_for on Python 3.11 returned as if woken): the service's stop hung."""
    dispatcher = desk.service.dispatcher
    worker = asyncio.create_task(dispatcher.run())
    for _ in range(10_000):  # until it idles, waiting to be woken (a few turns of the loop)
        if dispatcher.wakeup._waiters:  # asyncio.Event keeps its waiters there
            break
        await asyncio.sleep(0)
    assert dispatcher.wakeup._waiters, "the delivery loop never went idle"
    dispatcher.wake()  # e.g. a delivery finishing as the service stops
    worker.cancel()
    await stopped(worker)


HOSTILE = "<!channel> <https://evil.example|click> <script>alert(1)</script> &amp;"


async def test_hostile_text_arrives_literal_in_slack_and_escaped_in_email(desk: Desk) -> None:
    await desk.subscribe("reader@desk.example")
    report = await desk.ingest(story(
        id="hostile", title=f"{HOSTILE}\r\nBcc: victim@evil.example", key_takeaways=[HOSTILE],
        key_facts=[HOSTILE, "line\r\nBcc: victim@evil.example"],
    ))
    assert report.accepted == ["hostile"]
    await desk.service.check()
    for post in desk.slack.posts():
        wire = json.dumps(post.body)  # exactly what Slack received
        for forbidden in ("<!channel>", "<https://evil", "<script"):
            assert forbidden not in wire
        assert "&lt;!channel&gt;" in post.body["text"]
    [(_, recipients, raw)] = desk.smtp.messages
    assert recipients == ["reader@desk.example"]  # no Bcc smuggled in
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None
    assert str(message["Subject"]).startswith("[Action item] <!channel>")
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "<script>" not in content and "&lt;script&gt;" in content
    assert "&amp;amp;" in content


async def test_a_rescored_story_edits_its_message_once_and_replies_in_its_thread(
    desk: Desk,
) -> None:
    await desk.subscribe("reader@desk.example")
    living = {"id": "living", "title": "Title of living", "topics": ["satellites"]}
    await desk.ingest(story(**living, version=1, impact=8, sources=two("SpaceNews", "Reuters")))
    await desk.service.check()
    [alert] = desk.slack.posts("C0SPACEOPS")
    posted_ts = next(row.remote_id for row in await desk.deliveries() if row.kind == "alert"
                     and row.target == "slack:C0SPACEOPS")
    before = len(desk.slack.calls)

    await desk.ingest(story(**living, version=2, impact=9,
                            sources=two("SpaceNews", "Reuters", "Bloomberg")))
    await desk.service.check()
    update, reply = desk.slack.calls[before:]
    assert (update.method, update.body["ts"], update.body["channel"]) == (
        "chat.update", posted_ts, "C0SPACEOPS")
    assert "*Impact*\\n9/10" in json.dumps(update.body["blocks"])
    assert (reply.method, reply.body["thread_ts"]) == ("chat.postMessage", posted_ts)
    assert reply.body["text"] == ("Updated: Now verified by 3 sources (SpaceNews, Reuters, "
                                  "Bloomberg); impact 8 → 9")

    middle = len(desk.slack.calls)
    await desk.ingest(story(**living, version=3, impact=6,
                            sources=two("SpaceNews", "Reuters", "Bloomberg")))
    await desk.service.check()
    downgrade, why = desk.slack.calls[middle:]
    assert downgrade.method == "chat.update" and downgrade.body["ts"] == posted_ts
    assert downgrade.body["text"].startswith("No longer an action item: Title of living")
    assert why.body["text"] == ("Updated: No longer an action item: impact 6 &lt; 8 · "
                                "3 independent sources ≥ 2; impact 9 → 6")

    # Replaying the same versions changes nothing; no top-level post and one email in all.
    end = len(desk.slack.calls)
    for version, impact in ((2, 9), (3, 6)):
        await desk.ingest(story(**living, version=version, impact=impact,
                                sources=two("SpaceNews", "Reuters", "Bloomberg")))
    await desk.service.check()
    assert len(desk.slack.calls) == end
    top_level = [c for c in desk.slack.posts() if "thread_ts" not in c.body]
    assert top_level == [alert]
    assert len(desk.emails("reader@desk.example")) == 1


@pytest.fixture
async def quiet_desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
                     smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    clock.now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 23:00 in New York
    routes = [{"channel": "C0QUIET", "quiet_hours": "22:00-07:00",
               "timezone": "America/New_York", "break_through_impact": 10}]
    config = desk_config(tmp_path, sqlite_url, slack, smtp[1],
                         slack={"pacing": "0s", "batch_window": "30s", "routes": routes})
    service = Service(config, clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


async def test_quiet_hours_hold_items_until_morning_but_impact_10_breaks_through(
    quiet_desk: Desk,
) -> None:
    desk = quiet_desk
    at = desk.clock().isoformat()
    await desk.ingest(item("night-1", impact=8, scored_at=at),
                      item("night-2", impact=9, scored_at=at))
    await desk.service.check()
    assert desk.slack.posts() == []  # 23:00: held, even though check closes batch windows

    desk.clock.advance(30 * 60)  # 23:30
    await desk.ingest(item("urgent", impact=10, scored_at=desk.clock().isoformat()))
    await desk.service.check()
    [urgent] = desk.slack.posts()
    assert titles(urgent.body) == ["urgent"]
    assert "breaks through" not in urgent.body["text"]  # an alert carries its own reason

    desk.clock.advance(7.5 * 3600 - 60)  # 06:59: still quiet
    await desk.service.check()
    assert len(desk.slack.posts()) == 1
    desk.clock.advance(60)  # 07:00 in New York
    await desk.service.check()
    [_, morning] = desk.slack.posts()
    assert titles(morning.body) == ["night-1", "night-2"]
    assert morning.body["blocks"][0]["text"]["text"] == "2 new action items"


async def test_a_daily_subscriber_gets_no_instant_email(desk: Desk) -> None:
    daily = subscribers.validate("daily@desk.example", "daily", "UTC", (), "07:00")
    await desk.service.db.write(subscribers.add, daily, desk.clock())
    await desk.subscribe("instant@desk.example")
    await desk.ingest(item("both-ways"))
    await desk.service.check()
    assert [r for _, rcpts, _ in desk.smtp.messages for r in rcpts] == ["instant@desk.example"]


async def test_a_rescored_story_in_a_batch_edits_the_whole_batch(desk: Desk) -> None:
    await desk.ingest(item("a"), item("b", sources=two("SpaceNews", "Reuters")), item("c"))
    await desk.service.check()
    [batch] = desk.slack.posts("C0SPACEOPS")
    assert titles(batch.body) == ["a", "b", "c"]
    before = len(desk.slack.calls)
    await desk.ingest(item("b", version=2, sources=two("SpaceNews", "Reuters", "Bloomberg")))
    await desk.service.check()
    update, reply = desk.slack.calls[before:]
    assert update.method == "chat.update" and update.body["ts"] == reply.body["thread_ts"]
    assert titles(update.body) == ["a", "b", "c"]  # rendered again as the batch it is
    assert update.body["blocks"][0]["text"]["text"] == "3 new action items"
    assert reply.body["text"].startswith("Updated: Now verified by 3 sources")
