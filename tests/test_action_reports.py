"""What the desk's presses show outside Slack: the daily digest email says each item's state
and owner by name, and `/metrics` counts claims, open items and verdicts.

In process, on a clock the test moves: signed Slack requests go through the service's own
HTTP app (`serving.doors`) to `/slack/events`, Slack's Web API is the local FakeSlack, email
lands in a loopback aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.readers import subscribers
from bot.rules.claims import Item, State
from bot.service import Service, serving
from bot.stories import actions
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, SmtpRecorder, slack_signature
from tests.harness import Clock, Desk

SECRET = "signing-secret-for-reports"
START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # the digest goes at 07:00 UTC


@dataclass
class Served:
    desk: Desk
    client: httpx.AsyncClient

    async def signed(self, payload: dict[str, Any]) -> None:
        """Post an interaction payload as Slack does: form-encoded, signed now."""
        body = urlencode({"payload": json.dumps(payload)})
        stamp = str(int(time.time()))  # Bolt checks the signature's age on the real clock
        answer = await self.client.post("/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(SECRET, stamp, body)})
        assert answer.status_code == 200 and answer.content == b""  # acked empty, at once

    async def state(self, story_id: str, wanted: State) -> Item:
        """The item once the press's lazy half (a task on this loop) has stored `wanted`."""
        async with asyncio.timeout(10):
            while True:
                item, _ = await self.desk.service.db.read(actions.read, story_id)
                if item.state is wanted:
                    return item
                await asyncio.sleep(0.01)  # yields to the lazy task; not awaitable from here


@pytest.fixture
async def served(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
                 smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Served]:
    config = make_config(
        tmp_path, sqlite_url,
        {"slack": {"pacing": "0s", "batch_window": "0s", "routes": [{"channel": "C0DESK"}]},
         "email": {"batch_window": "0s"}},
        slack_bot_token="xoxb-test-token", slack_api_url=slack.url,
        slack_signing_secret=SECRET, smtp_host="127.0.0.1", smtp_port=smtp[1],
        smtp_security="none", email_from="Alerts <alerts@desk.example>",
        public_url="https://alerts.desk.example")
    clock = Clock()
    clock.now = START
    service = Service(config, clock)
    app, _ = serving.doors(service)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot")
    yield Served(Desk(service, slack, smtp[0], clock), client)
    await client.aclose()
    await service.close()


def pressed(action: dict[str, Any], user: dict[str, str], ts: str) -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": "T1"}, "user": user, "api_app_id": "A1",
            "token": "x", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": "1.0", "channel_id": "C0DESK"},
            "channel": {"id": "C0DESK"}, "response_url": "https://hooks.slack.invalid/r",
            "actions": [{"action_ts": ts, **action}]}


def dismissal(story_id: str, user: dict[str, str]) -> dict[str, Any]:
    return {"type": "view_submission", "team": {"id": "T1"}, "user": user, "api_app_id": "A1",
            "token": "x", "trigger_id": "1.2.4",
            "view": {"id": "V0DISMISS", "callback_id": "item_dismiss", "type": "modal",
                     "private_metadata": story_id, "state": {"values": {
                         "reason": {"reason": {"type": "radio_buttons",
                                               "selected_option": {"value": "not_our_beat"}}},
                         "note": {"note": {"type": "plain_text_input", "value": None}}}}}}


ANA = {"id": "U0ANA", "name": "Ana Lima", "username": "ana.lima"}
BO = {"id": "U0BO", "name": "<b>Bo</b> & co"}  # hostile, as a name may be


async def desk_acts(served: Served) -> None:
    """Three action items posted in one batch at 06:00; at 06:10 Ana claims one from its menu
    and Bo dismisses one."""
    desk = served.desk
    await desk.service.db.write(subscribers.add, subscribers.validate(
        "ed@desk.example", "daily", "UTC", (), "07:00"), desk.clock())
    await desk.ingest(*(story(id=f"{name}-story", title=f"Title of {name}", impact=9,
                              scored_at=START.isoformat()) for name in ("claimed", "open",
                                                                        "dismissed")))
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [batch] = desk.slack.posts("C0DESK")  # the three arrived together: one batch, at 06:00
    desk.clock.advance(600)
    # Ana claims hers from the batch item's menu, as Slack sends the choice.
    [section] = [b for b in batch.body["blocks"] if b.get("block_id") == "item:claimed-story"]
    menu = section["accessory"]
    [claim] = [o for o in menu["options"] if o["value"] == "claim"]
    await served.signed(pressed({"type": "static_select", "action_id": menu["action_id"],
                                 "block_id": section["block_id"], "selected_option": claim},
                                ANA, "1800.1"))
    assert (await served.state("claimed-story", State.CLAIMED)).by_name == "Ana Lima"
    await served.signed(dismissal("dismissed-story", BO))
    assert (await served.state("dismissed-story", State.DISMISSED)).by == "U0BO"
    # The batch is edited to show both, each on its own item (its context line).
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [*_, edit] = [c for c in desk.slack.calls if c.method == "chat.update"]
    blocks = edit.body["blocks"]
    shown = {blocks[n]["block_id"]: [e["text"] for e in blocks[n + 1]["elements"]][1:]
             for n, b in enumerate(blocks) if b.get("block_id", "").startswith("item:")}
    assert shown == {"item:claimed-story": [":raising_hand: Claimed by <@U0ANA> 06:10 UTC"],
                     "item:open-story": [],
                     "item:dismissed-story": [":no_entry_sign: Dismissed by <@U0BO>: not our beat"]}


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return "\n".join(text.get_content().splitlines()), html.get_content()


async def test_the_daily_digest_says_who_claimed_and_who_dismissed_by_name(
    served: Served,
) -> None:
    await desk_acts(served)
    desk = served.desk
    desk.clock.now = START + timedelta(hours=1)  # 07:00: ed's digest is due
    await desk.service.plan_digests()
    await desk.service.dispatcher.drain(timedelta(seconds=30))
    [digest] = [m for m in desk.emails("ed@desk.example")
                if m["Subject"].startswith("Daily digest")]
    text, html = parts(digest)
    # The text part, item by item: each state under the item it belongs to, by name.
    listed = {block.split("\n")[0].split(". ", 1)[1]: block.split("\n")[3]
              for block in text.split("\n\n") if block[:3] in ("1. ", "2. ", "3. ")}
    assert listed == {"Title of claimed": "   Claimed by Ana Lima",
                      "Title of dismissed": "   Dismissed by <b>Bo</b> & co: not our beat",
                      "Title of open": "   - Fact one"}  # nobody has it: no owner line
    assert '<p class="owner"' in html and "Claimed by Ana Lima</p>" in html
    # Bo's name is his text: escaped where it lands, so it is no markup.
    assert "Dismissed by &lt;b&gt;Bo&lt;/b&gt; &amp; co: not our beat" in html
    assert "<b>Bo</b>" not in html


def sample(exposition: str, name: str) -> float | None:
    """One sample's value from the Prometheus text format (`name` with its labels)."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_time_the_claim_and_count_open_items_and_verdicts(
    served: Served,
) -> None:
    await desk_acts(served)
    answer = await served.client.get("/metrics")
    assert answer.status_code == 200
    shown = answer.text
    # Posted at 06:00, claimed at 06:10: one claim, 600 s after its first Slack message.
    assert sample(shown, 'alertbot_claim_seconds_bucket{le="300.0"}') == 0
    assert sample(shown, 'alertbot_claim_seconds_bucket{le="600.0"}') == 1
    assert sample(shown, "alertbot_claim_seconds_count") == 1
    assert sample(shown, "alertbot_claim_seconds_sum") == 600
    # Of the three impact-9 items only one is open and unclaimed; Bo's is a verdict.
    assert sample(shown, 'alertbot_action_items_open{impact="9"}') == 1
    assert sample(shown, 'alertbot_action_item_verdicts{reason="not_our_beat",'
                         'verdict="dismiss"}') == 1
    # Ana finishes hers: it is a verdict too, and no longer counted open or claimed twice.
    done = {"id": "V0DONE", "callback_id": "item_done", "type": "modal",
            "private_metadata": "claimed-story", "state": {"values": {
                "note": {"note": {"type": "plain_text_input", "value": "filed follow-up"}}}}}
    await served.signed({"type": "view_submission", "team": {"id": "T1"}, "user": ANA,
                         "api_app_id": "A1", "token": "x", "trigger_id": "1.2.5", "view": done})
    assert (await served.state("claimed-story", State.DONE)).note == "filed follow-up"
    again = (await served.client.get("/metrics")).text
    assert sample(again, 'alertbot_action_item_verdicts{reason="",verdict="done"}') == 1
    assert sample(again, "alertbot_claim_seconds_count") == 1
    assert sample(again, 'alertbot_action_items_open{impact="9"}') == 1
