"""Escalation of unclaimed action items, on the `Service` with a hand-moved clock: the local
Slack server receives what is sent; claims, snoozes and dismissals arrive as signed Slack
requests at the service's own `/slack/events`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot import outbox
from bot.rules.claims import Request, Verb
from bot.service import Service, serving
from bot.stories import actions
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, slack_signature
from tests.harness import Clock, Desk
from tests.process import Alertbot

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SECRET = "signing-secret-for-tests"
ESCALATING = {"channel": "C0SPACEOPS", "escalate_after": "15m",
              "escalate_to": ["S0ONCALL", "U0ANA", "U0BO"]}


def config(tmp_path: Path, url: str, slack: FakeSlack, _drop: Sequence[str] = (),
           **route: Any) -> Any:
    """The desk with the escalating route, `route` written over it, `_drop` keys left out."""
    written = {k: v for k, v in {**ESCALATING, **route}.items() if k not in _drop}
    return make_config(
        tmp_path, url, {"slack": {"pacing": "0s", "batch_window": "0s",
                                  "routes": [written]}},
        slack_bot_token="xoxb-test-token", slack_api_url=slack.url,
        slack_signing_secret=SECRET)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack) -> AsyncIterator[Desk]:
    clock = Clock()
    clock.now = T0
    service = Service(config(tmp_path, sqlite_url, slack), clock)
    yield Desk(service, slack, None, clock)  # type: ignore[arg-type]
    await service.close()


def item(story_id: str = "s-esc", impact: float = 9) -> dict[str, Any]:
    return story(id=story_id, title=f"Title of {story_id} <!here>", impact=impact,
                 scored_at=(T0 - timedelta(minutes=1)).isoformat())


async def run_until(desk: Desk, minutes: float) -> None:
    """Move the clock to T0 + `minutes` and send everything due by then."""
    desk.clock.now = at(minutes)
    await desk.service.dispatcher.drain(timedelta(0))


def escalations(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.posts() if "Escalation" in c.body.get("text", "")]


async def press(desk: Desk, payload: dict[str, Any], story_id: str, changed: Any) -> None:
    """Send a signed Slack request to the service's /slack/events; wait until the press it
    carries is stored (the lazy half commits after the ack)."""
    app, _ = serving.doors(desk.service)
    body = urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time()))  # Slack's signature window is real time, not the desk's
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": slack_signature(SECRET, stamp, body)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bot") as client:
        ack = await client.post("/slack/events", content=body, headers=headers)
    assert ack.status_code == 200 and ack.content == b""
    for _ in range(500):  # the lazy half runs as a task on this loop
        found, _version = await desk.service.db.read(actions.read, story_id)
        if changed(found):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the press on {story_id} was never stored")


def button(action: dict[str, Any], user: str = "U0ANA") -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
            "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": "1.1", "channel_id": "C0SPACEOPS"},
            "channel": {"id": "C0SPACEOPS"}, "message": {"ts": "1.1"},
            "response_url": "https://hooks.example/never-used",
            "actions": [{"block_id": "alert_actions", "action_ts": str(time.time()), **action}]}


async def test_an_unclaimed_item_is_escalated_once_at_the_delay(desk: Desk) -> None:
    await desk.ingest(item())
    await run_until(desk, 0)
    [alert] = desk.slack.posts()
    await run_until(desk, 14.99)
    assert escalations(desk.slack) == []  # nothing before 10:15
    # Waiting for their time, the three rows are scheduled, not a backlog.
    waiting = (await desk.service.exposition()).decode()
    assert 'alertbot_outbox_depth{status="scheduled"} 3.0' in waiting
    assert 'alertbot_outbox_depth{status="pending"} 0.0' in waiting
    await run_until(desk, 15)
    sent = escalations(desk.slack)
    assert sorted(c.body["channel"] for c in sent) == ["C0SPACEOPS", "U0ANA", "U0BO"]
    [thread] = [c for c in sent if c.body["channel"] == "C0SPACEOPS"]
    posted_ts = next(r.remote_id for r in await desk.deliveries() if r.kind == "alert")
    assert thread.body["thread_ts"] == posted_ts and alert.body.get("thread_ts") is None
    said = json.dumps(thread.body["blocks"])
    assert "<!subteam^S0ONCALL>, <@U0ANA>, <@U0BO>" in said
    assert "<!here>" not in json.dumps([c.body for c in sent])  # the title is escaped
    dm = next(c for c in sent if c.body["channel"] == "U0ANA")
    assert "in <#C0SPACEOPS> yet, and you are on its escalation list" in json.dumps(dm.body)
    await run_until(desk, 120)
    assert len(escalations(desk.slack)) == 3  # once, not each time the clock moves
    metrics = (await desk.service.exposition()).decode()
    assert 'alertbot_escalations_sent_total{route="C0SPACEOPS"} 3.0' in metrics
    # `/alerts status` lists the alerts sent to the channel, not the escalation in its thread.
    listed = await desk.service.db.read(outbox.recent, "slack:C0SPACEOPS")
    assert [row.kind for row in listed] == ["alert"]


# Claim is a button; Done opens a form whose submission stores it.
CLAIM = button({"type": "button", "action_id": "item_claim", "value": "s-esc"})
DONE = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0ANA"},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.5",
        "view": {"id": "V0DONE", "type": "modal", "callback_id": "item_done",
                 "private_metadata": "s-esc", "state": {"values": {
                     "note": {"note": {"type": "plain_text_input", "value": None}}}}}}


@pytest.mark.parametrize(("payload", "state"), [(CLAIM, "claimed"), (DONE, "done")])
async def test_a_claim_or_done_before_the_delay_cancels_it(desk: Desk, payload: dict[str, Any],
                                                          state: str) -> None:
    await desk.ingest(item())
    await run_until(desk, 10)
    await press(desk, payload, "s-esc", lambda found: found.state.value == state)
    await run_until(desk, 120)
    assert escalations(desk.slack) == []
    cancelled = await desk.deliveries("cancelled")
    assert len(cancelled) == 3
    assert {r.last_error for r in cancelled} == {f"cancelled: {state} by U0ANA"}


async def test_a_dismissal_through_the_modal_cancels_it(desk: Desk, tmp_path: Path,
                                                       sqlite_url: str) -> None:
    await desk.ingest(item())
    await run_until(desk, 5)
    view = {"id": "V0DISMISS", "type": "modal", "callback_id": "item_dismiss",
            "private_metadata": "s-esc", "state": {"values": {
                "reason": {"reason": {"type": "radio_buttons",
                                      "selected_option": {"value": "duplicate"}}}}}}
    submission = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
                  "api_app_id": "A1", "token": "x", "trigger_id": "1.2.4", "view": view}
    await press(desk, submission, "s-esc", lambda found: found.state.value == "dismissed")
    await run_until(desk, 120)
    assert escalations(desk.slack) == []
    assert {r.last_error for r in await desk.deliveries("cancelled")} == {
        "cancelled: dismissed by U0BO"}
    # The operator sees them, and why, where every delivery is listed.
    (tmp_path / "cli").mkdir()
    cli = Alertbot.make(tmp_path / "cli", "", DATABASE_URL=sqlite_url)
    listed = cli.cli("deliveries", "--status", "cancelled", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted((r["kind"], r["target"], r["last_error"]) for r in json.loads(listed.stdout)) == [
        ("escalate", f"slack:{t}", "cancelled: dismissed by U0BO")
        for t in ("C0SPACEOPS", "U0ANA", "U0BO")]


async def test_a_snooze_moves_it_to_the_snoozes_end(desk: Desk) -> None:
    await desk.ingest(item())
    await run_until(desk, 5)
    snooze = {"type": "static_select", "action_id": "item_snooze",
              "selected_option": {"value": "1h:s-esc"}}
    await press(desk, button(snooze), "s-esc", lambda found: found.snoozed_until is not None)
    await run_until(desk, 64.99)
    assert escalations(desk.slack) == []  # not at 10:15, nor before 11:05
    await run_until(desk, 65)
    assert len(escalations(desk.slack)) == 3


async def test_a_claim_the_cancel_missed_is_caught_as_it_is_sent(desk: Desk) -> None:
    # Stored without the Slack door (as a replica of an older release would): the pending
    # rows are left, and the check at send time settles them cancelled instead.
    await desk.ingest(item())
    await run_until(desk, 1)

    def claim(db: Any) -> None:
        request = Request(Verb.CLAIM, "U0BO")
        actions.apply(db, "s-esc", request, at(2), actions.press_key("1", "U0BO", "claim",
                                                                     "s-esc"))

    await desk.service.db.write(claim)
    await run_until(desk, 15)
    assert escalations(desk.slack) == []
    assert len(await desk.deliveries("cancelled")) == 3
    assert desk.service.dispatcher.outcome.counts[("escalate", "cancelled")] == 3


async def test_a_story_rescored_below_the_impact_is_not_escalated(desk: Desk) -> None:
    await desk.ingest(item())
    await run_until(desk, 5)
    rescored = {**item(impact=8.5), "scored_at": at(4).isoformat()}
    await desk.ingest(rescored)  # a newer version, still an action item, below 9
    await run_until(desk, 15)
    assert escalations(desk.slack) == []
    assert {r.last_error for r in await desk.deliveries("cancelled")} == {
        "cancelled: re-scored to impact 8.5 < 9"}


async def desk_with(tmp_path: Path, url: str, slack: FakeSlack, **route: Any) -> Desk:
    clock = Clock()
    clock.now = T0
    return Desk(Service(config(tmp_path, url, slack, **route), clock), slack,
                None, clock)  # type: ignore[arg-type]


async def test_zero_delay_escalates_with_the_alert_in_its_thread(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack,
) -> None:
    desk = await desk_with(tmp_path, sqlite_url, slack, escalate_after="0s",
                           escalate_to=["U0ANA", "C0DUTY"])
    try:
        await desk.ingest(item())
        await run_until(desk, 0)
        sent = escalations(slack)
        assert sorted(c.body["channel"] for c in sent) == ["C0DUTY", "C0SPACEOPS", "U0ANA"]
        [thread] = [c for c in sent if c.body["channel"] == "C0SPACEOPS"]
        [alert] = [c for c in slack.posts("C0SPACEOPS") if c not in sent]
        assert thread.body["thread_ts"] and alert.at < thread.at  # after the alert, in its thread
    finally:
        await desk.service.close()


async def test_repeat_sends_reminders_the_delay_apart(tmp_path: Path, sqlite_url: str,
                                                      slack: FakeSlack) -> None:
    desk = await desk_with(tmp_path, sqlite_url, slack, escalate_repeat=2,
                           escalate_to=["U0ANA"])
    try:
        await desk.ingest(item())
        for minutes in (0, 15, 29.99):
            await run_until(desk, minutes)
        assert len(escalations(slack)) == 2  # round 1: the thread reply and the DM
        await run_until(desk, 30)
        second = escalations(slack)[2:]
        assert len(second) == 2
        assert all("Escalation (reminder 2 of 2)" in c.body["text"] for c in second)
        await run_until(desk, 240)
        assert len(escalations(slack)) == 4
    finally:
        await desk.service.close()


async def test_a_thread_reply_waits_for_its_alert_to_be_posted(tmp_path: Path, sqlite_url: str,
                                                               slack: FakeSlack) -> None:
    desk = await desk_with(tmp_path, sqlite_url, slack, escalate_after="0s",
                           escalate_to=["U0ANA"])
    try:
        # The alert fails once (retried later); the DM to U0ANA goes beside it, in any order.
        slack.fail_next("chat.postMessage", status=500, channel="C0SPACEOPS")
        await desk.ingest(item())
        await run_until(desk, 0)
        waiting = [r for r in await desk.deliveries("pending") if r.kind == "escalate"]
        assert [(r.target, r.last_error) for r in waiting] == [
            ("slack:C0SPACEOPS", "its alert is not posted yet")]
        await run_until(desk, 0.1)  # the alert's retry, then the reply's second look
        [thread] = [c for c in escalations(slack) if c.body["channel"] == "C0SPACEOPS"]
        [alert] = [r for r in await desk.deliveries("sent") if r.kind == "alert"]
        assert thread.body["thread_ts"] == alert.remote_id
    finally:
        await desk.service.close()


@pytest.mark.parametrize(("impact", "due"), [(9, 60), (10, 15)])
async def test_quiet_hours_hold_it_to_their_end_unless_the_impact_breaks_through(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack, impact: float, due: float,
) -> None:
    desk = await desk_with(tmp_path, sqlite_url, slack, quiet_hours="10:10-11:00",
                           timezone="UTC", break_through_impact=10)
    try:
        await desk.ingest(item(impact=impact))
        await run_until(desk, 0)  # before quiet hours: the alert goes
        await run_until(desk, due - 0.01)
        assert escalations(slack) == []
        await run_until(desk, due)
        assert len(escalations(slack)) == 3
    finally:
        await desk.service.close()
