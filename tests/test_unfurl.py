"""Link previews: signed `link_shared` events to a running `alertbot run`, whose `chat.unfurl`
calls reach the local Slack Web API (tests/fakes.py)."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk.models.blocks import Block

from bot.slack_app.unfurls import shared_links
from tests.conftest import story
from tests.fakes import Call, FakeSlack, slack_signature
from tests.process import Alertbot, until

SECRET = "signing-secret-for-unfurls"
CONFIG = """
[delivery]
retry_base = "50ms"

[slack]
pacing = "0s"
batch_window = "0s"
unfurl_domains = ["desk.example"]

[[slack.routes]]
channel = "C0CONFIG"
topics = ["nothing-matches"]
"""
GLIDE = "https://news.desk.example/s/glide"
_events = itertools.count(1)


def stories() -> list[dict[str, Any]]:
    return [
        story(id="glide", url=GLIDE, title="Glide vehicle test <ends> early & over budget",
              impact=9, sentiment="very_negative", verified_by=3, sources=None,
              key_facts=["Telemetry lost after separation", "<!channel> third test this year",
                         "Range closed for a week", "Budget line under review"]),
        story(id="quiet", url="https://desk.example/s/quiet", title="Radar upgrade on schedule",
              impact=4, key_facts=[]),
        # A story the desk stored whose link is in no unfurl domain.
        story(id="elsewhere", url="https://elsewhere.example/s/1", title="Elsewhere story"),
    ]


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def started(tmp: Path, config: str, slack: FakeSlack) -> Alertbot:
    bot = Alertbot.make(tmp, config, slack.url, SLACK_SIGNING_SECRET=SECRET)
    source = tmp / "stories.json"
    source.write_text(json.dumps(stories()))
    assert bot.cli("ingest", str(source)).returncode == 0
    return bot.start()


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    bot = started(tmp_path_factory.mktemp("unfurl"), CONFIG, slack_server)
    yield bot
    bot.stop()


def shared(bot: Alertbot, urls: list[str], *, event_id: str | None = None, retry: int = 0,
           channel: str = "C0CHAT", **event: Any) -> tuple[httpx.Response, str]:
    """Post a signed `link_shared` event_callback as Slack sends it; return the ack and the
    event's ts (the message the links are in)."""
    n = next(_events)
    ts = f"1700000100.{n:06d}"
    body = json.dumps({
        "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id or f"Ev{n:08d}", "event_time": int(time.time()),
        "event": {"type": "link_shared", "channel": channel, "is_bot_user_member": True,
                  "user": "U1", "message_ts": ts, "source": "conversations_history",
                  "unfurl_id": f"{channel}.{ts}.abc", "event_ts": ts,
                  "links": [{"domain": url.split("/")[2], "url": url} for url in urls],
                  **event},
    })
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
               "X-Slack-Signature": slack_signature(SECRET, timestamp, body)}
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    ack = httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)
    assert ack.status_code == 200, ack.text
    return ack, ts


def unfurl_of(slack: FakeSlack, ts: str) -> Call:
    """The chat.unfurl call for the message `ts` (an event, not a sleep)."""
    slack.wait_for(lambda: any(c.body.get("ts") == ts for c in slack.unfurls()), 10,
                   lambda: f"no chat.unfurl for {ts}: {[c.body for c in slack.unfurls()]}")
    [call] = [c for c in slack.unfurls() if c.body.get("ts") == ts]
    return call


def unfurl_rows(bot: Alertbot) -> list[tuple[str, str]]:
    with sqlite3.connect(bot.tmp / "alertbot.db") as db:
        return list(db.execute("SELECT dedupe_key, status FROM deliveries "
                               "WHERE dedupe_key LIKE 'unfurl:%' ORDER BY id"))


def test_a_story_link_unfurls_once_into_its_figures_and_key_facts(
        alertbot: Alertbot, slack_server: FakeSlack) -> None:
    ack, ts = shared(alertbot, [GLIDE], event_id="EvGLIDE")
    assert ack.content == b""  # acked at once, empty
    call = unfurl_of(slack_server, ts)
    assert call.status == 200 and call.body["channel"] == "C0CHAT"
    assert list(call.body["unfurls"]) == [GLIDE]
    blocks = call.body["unfurls"][GLIDE]["blocks"]
    for raw in blocks:  # Block Kit as Slack takes it
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Glide vehicle test &lt;ends&gt; early &amp; over budget" in text  # mrkdwn escaped
    assert "*Impact*\\n9/10" in text and "*Sentiment*\\nvery negative" in text
    assert "*Verified by 3 independent sources*" in text
    assert "1. Telemetry lost after separation" in text
    assert "2. &lt;!channel&gt; third test this year" in text  # no @channel from a story
    assert "3. Range closed for a week" in text and "…and 1 more" in text
    assert "Budget line under review" not in text
    assert "`/story glide`" in text

    # Slack sends the same event again (it thinks the first went unanswered): acked, and
    # nothing more is unfurled. A later event is the mark that the retry was handled.
    shared(alertbot, [GLIDE], event_id="EvGLIDE", retry=1)
    _, later = shared(alertbot, [GLIDE])
    unfurl_of(slack_server, later)
    assert len([c for c in slack_server.unfurls() if c.body.get("ts") == ts]) == 1
    keys = [key for key, _ in unfurl_rows(alertbot)]
    assert keys.count("unfurl:EvGLIDE") == 1


def test_a_failed_unfurl_is_retried_and_one_slack_refuses_is_not(
        alertbot: Alertbot, slack_server: FakeSlack) -> None:
    def calls(ts: str) -> list[Call]:
        return [c for c in slack_server.unfurls() if c.body.get("ts") == ts]

    slack_server.fail_next("chat.unfurl", status=500)
    _, ts = shared(alertbot, [GLIDE])
    slack_server.wait_for(lambda: any(c.status == 200 for c in calls(ts)), 10,
                          lambda: f"no answered chat.unfurl for {ts}: {calls(ts)}")
    assert [c.status for c in calls(ts)] == [500, 200]  # retried by the delivery workers

    slack_server.fail_next("chat.unfurl", error="cannot_unfurl_url")  # ok: false, for good
    before = len(unfurl_rows(alertbot))
    _, refused = shared(alertbot, [GLIDE])
    until(lambda: len(unfurl_rows(alertbot)) > before
          and unfurl_rows(alertbot)[-1][1] == "dead", 10)
    assert unfurl_rows(alertbot)[-1][1] == "dead"  # not retried: Slack will not unfurl it
    assert len(calls(refused)) == 1


def test_only_stored_story_links_in_the_unfurl_domains_unfurl(
        alertbot: Alertbot, slack_server: FakeSlack) -> None:
    unknown = "https://desk.example/s/no-such-story"
    outside = "https://elsewhere.example/s/1"  # a stored story, outside unfurl_domains
    before = len(slack_server.unfurls())
    _, nothing = shared(alertbot, [unknown, outside])
    _, mixed = shared(alertbot, [unknown, "https://desk.example/s/quiet", outside])
    call = unfurl_of(slack_server, mixed)
    assert list(call.body["unfurls"]) == ["https://desk.example/s/quiet"]
    text = json.dumps(call.body["unfurls"])
    assert "Radar upgrade on schedule" in text and "Key facts" not in text  # none listed
    assert "Not an action item" in text  # impact 4, below the desk's rule
    # The event with no story link queued nothing (its row would precede `mixed`'s).
    assert [c.body.get("ts") for c in slack_server.unfurls()[before:]] == [mixed]
    assert nothing not in json.dumps([c.body for c in slack_server.unfurls()])


def test_a_draft_in_the_composer_unfurls_by_its_unfurl_id(
        alertbot: Alertbot, slack_server: FakeSlack) -> None:
    shared(alertbot, [GLIDE], channel="COMPOSER", source="composer", unfurl_id="U1-draft-7",
           message_ts="U1-0a1b2c")
    slack_server.wait_for(lambda: any(c.body.get("unfurl_id") == "U1-draft-7"
                                      for c in slack_server.unfurls()), 10,
                          lambda: "no chat.unfurl for the draft")
    [call] = [c for c in slack_server.unfurls() if c.body.get("unfurl_id") == "U1-draft-7"]
    assert call.body["source"] == "composer" and "ts" not in call.body
    assert list(call.body["unfurls"]) == [GLIDE]


def test_without_unfurl_domains_nothing_unfurls(tmp_path: Path, slack_server: FakeSlack
                                                ) -> None:
    bot = started(tmp_path, CONFIG.replace('unfurl_domains = ["desk.example"]\n', ""),
                  slack_server)
    try:
        before = len(slack_server.unfurls())
        ack, _ = shared(bot, [GLIDE])
        assert ack.content == b""
        # A slash command answered after the event shows the service handled the event.
        reply = f"commands/unfurl-off-{next(_events)}"
        form = {"command": "/story", "text": "glide", "team_id": "T1", "channel_id": "C0CHAT",
                "user_id": "U1", "response_url": f"{slack_server.url}{reply}",
                "trigger_id": "1.2.3"}
        body = httpx.QueryParams(form).__str__()
        timestamp = str(int(time.time()))
        httpx.post(f"{bot.url}/slack/events", content=body, timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(SECRET, timestamp, body)})
        slack_server.wait_for_call(reply)
        assert unfurl_rows(bot) == []
        assert len(slack_server.unfurls()) == before
    finally:
        bot.stop()


def test_links_count_in_a_domain_or_its_subdomains_only() -> None:
    event = {"links": [{"url": u} for u in (
        "https://desk.example/a", "https://NEWS.Desk.Example/b", "https://desk.example/a",
        "https://notdesk.example/c", "https://desk.example.evil.test/d", "http://[::1/e",
        "mailto:x@desk.example")]}
    assert shared_links(event, ["desk.example"]) == ["https://desk.example/a",
                                                     "https://NEWS.Desk.Example/b"]
    assert shared_links(event, []) == []
