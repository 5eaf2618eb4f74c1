"""The Slack app door: signed slash commands and button clicks to a running `alertbot run`."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from bot import db as database
from bot.db.schema import DELIVERIES
from bot.slack_app.replies import later, reply_later
from bot.stories import actions
from tests.conftest import story
from tests.fakes import FakeSlack, slack_signature
from tests.process import Alertbot

SECRET = "signing-secret-for-tests"
CONFIG = """
[slack]
pacing = "0s"
batch_window = "0s"
admins = ["U1"]

[[slack.routes]]
channel = "C0CONFIG"
topics = ["nothing-matches"]
"""
HYPERSONIC = "Hypersonic glide vehicle test ends early over the Pacific"


def test_our_signature_matches_slacks_published_test_vector() -> None:
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
            "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")


def fixture_stories() -> list[dict[str, Any]]:
    subjects = ["Satellite operator", "Launch provider", "Defense ministry", "Space agency",
                "Missile maker", "Ground station network", "Radar program", "Budget office"]
    events = ["reports quarterly results", "delays a contract award", "opens a new facility",
              "announces a partnership", "faces an audit", "wins a protest",
              "tests a new sensor", "hires a new chief"]
    items = [story(id=f"bulk-{n:03d}",
                   title=f"{subjects[n % 8]} {events[(n // 8) % 8]} ({n})",
                   impact=5 + n % 5) for n in range(200)]
    items += [
        story(id="hgv-test", title=HYPERSONIC, impact=9, verified_by=3, sources=None,
              key_facts=["Telemetry was lost after booster separation", "Third test this year"],
              what_to_watch="A statement from the test office.",
              timeline=[{"date": "2026-03-05", "event": "Test flight"}]),
        story(id="hypersonic-budget", title="Hypersonic budget line trimmed", impact=7),
        story(id="pacific-range", title="Pacific test range gets new radar", impact=6),
        story(id="old-action", title="Older action item about hypersonic radar", impact=9,
              scored_at=(datetime.now(UTC) - timedelta(days=3)).isoformat()),
    ]
    return items


@dataclass
class WatchedSlack(FakeSlack):
    """The fake Slack, noting when users.info is asked (before `pause` may hold the answer)."""

    asked: threading.Event = field(default_factory=threading.Event)

    def _answer(self, method: str, body: dict[str, Any], headers: dict[str, str]
                ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "users.info":
            self.asked.set()
        return super()._answer(method, body, headers)


@pytest.fixture(scope="module")
def slack_server() -> Iterator[WatchedSlack]:
    fake = WatchedSlack()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    bot = slack_desk(tmp_path_factory.mktemp("slackapp"), slack_server, fixture_stories())
    yield bot.start()
    bot.stop()


def slack_desk(tmp: Path, slack: FakeSlack, stories: list[dict[str, Any]]) -> Alertbot:
    """An `alertbot run` (not started yet) with the desk's Slack config and signing secret,
    talking to `slack`, with `stories` ingested through the CLI."""
    bot = Alertbot.make(tmp, CONFIG, slack.url, SLACK_SIGNING_SECRET=SECRET)
    if stories:
        path = tmp / "stories.json"
        path.write_text(json.dumps(stories))
        assert bot.cli("ingest", str(path)).returncode == 0
    return bot


def post(bot: Alertbot, form: dict[str, str], *, secret: str = SECRET, age: int = 0,
         alter: bool = False) -> httpx.Response:
    body = urlencode(form)
    timestamp = str(int(time.time()) - age)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": timestamp,
               "X-Slack-Signature": slack_signature(secret, timestamp, body)}
    if alter:
        body = body.replace("hgv-test", "hgv-tesT")
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)


_replies = itertools.count(1)


def reply_path(kind: str = "commands") -> str:
    """A response_url path of its own, so each request's answer is told apart."""
    return f"{kind}/{next(_replies)}"


def ask(bot: Alertbot, text: str, slack: FakeSlack, name: str = "/story", channel: str = "C0X",
        user: str = "U1", **kwargs: Any) -> tuple[httpx.Response, str]:
    """Type `name text` in Slack: Slack's HTTP answer (the ack), and where the reply will go."""
    path = reply_path()
    ack = post(bot, {"command": name, "text": text, "team_id": "T1", "channel_id": channel,
                     "user_id": user, "response_url": f"{slack.url}{path}",
                     "trigger_id": "1.2.3"}, **kwargs)
    return ack, path


def command(bot: Alertbot, text: str, slack: FakeSlack, name: str = "/story",
            channel: str = "C0X", user: str = "U1", **kwargs: Any) -> httpx.Response:
    """What the person sees: every command is acked empty at once and answered through its
    response_url, so this checks the ack and returns the reply posted there (as a response).
    A refused request (401) is returned as Slack got it."""
    ack, path = ask(bot, text, slack, name, channel, user, **kwargs)
    if ack.status_code != 200:
        return ack
    assert ack.content == b"", ack.text  # the ack says nothing: the answer follows
    reply = slack.wait_for_call(path, timeout=10)
    return httpx.Response(200, json=reply.body)


def shown(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return json.dumps(response.json()["blocks"])


def test_story_by_id_shows_its_facts_sources_and_history(alertbot: Alertbot,
                                                         slack_server: FakeSlack) -> None:
    started = time.monotonic()
    ack, path = ask(alertbot, "hgv-test", slack_server)
    assert ack.status_code == 200 and time.monotonic() - started < 3
    reply = slack_server.wait_for_call(path, timeout=5)
    assert reply.at - started < 3
    answer = httpx.Response(200, json=reply.body)
    assert answer.json()["response_type"] == "ephemeral"
    blocks = shown(answer)
    for expected in (HYPERSONIC, "*Impact*\\n9/10", "1. Telemetry was lost after booster",
                     "2. Third test this year", "*What to watch*", "2026-03-05: Test flight",
                     "*Score history*", "impact 9, 3 sources, action item"):
        assert expected in blocks


def test_slash_commands_are_counted_and_timed_in_metrics(alertbot: Alertbot,
                                                         slack_server: FakeSlack) -> None:
    def answered() -> float:
        text = httpx.get(f"{alertbot.url}/metrics").text
        found = re.search(r'^alertbot_slash_command_seconds_count\{command="/story"\} (\S+)$',
                          text, re.M)
        return float(found.group(1)) if found else 0.0

    before = answered()  # the app is shared by this module's tests
    for _ in range(3):
        shown(command(alertbot, "hgv-test", slack_server))
    assert answered() == before + 3


def test_story_by_url_including_slacks_angle_brackets(alertbot: Alertbot,
                                                      slack_server: FakeSlack) -> None:
    url = "https://desk.example/s/hgv-test"
    for text in (url, f"<{url}>", f"<{url}|desk.example/s/hgv-test>"):
        assert HYPERSONIC in shown(command(alertbot, text, slack_server))


def test_story_by_words_finds_the_story_among_two_hundred(alertbot: Alertbot,
                                                          slack_server: FakeSlack) -> None:
    assert HYPERSONIC in shown(command(alertbot, "hypersonic glide pacific", slack_server))
    assert HYPERSONIC in shown(command(alertbot, "telemetry booster", slack_server))  # facts


def test_several_matches_offer_the_best_five_to_pick(alertbot: Alertbot,
                                                     slack_server: FakeSlack) -> None:
    answer = command(alertbot, "hypersonic", slack_server).json()
    picks = [b["accessory"]["value"] for b in answer["blocks"] if b.get("accessory")]
    assert sorted(picks) == ["hgv-test", "hypersonic-budget", "old-action"]


def test_no_match_suggests_actionitems_and_no_text_shows_usage(alertbot: Alertbot,
                                                               slack_server: FakeSlack) -> None:
    assert "Try `/actionitems`" in shown(command(alertbot, "zeppelin armada", slack_server))
    assert "Usage:" in shown(command(alertbot, "", slack_server))


def test_picking_a_match_replaces_the_list_with_the_story(alertbot: Alertbot,
                                                          slack_server: FakeSlack) -> None:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
               "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
               "container": {"type": "message"}, "channel": {"id": "C0X"},
               "response_url": f"{slack_server.url}pick/1",
               "actions": [{"type": "button", "action_id": "story_pick_1", "block_id": "b",
                            "value": "hgv-test", "action_ts": "1"}]}
    ack = post(alertbot, {"payload": json.dumps(payload)})
    assert ack.status_code == 200 and ack.content == b""
    reply = slack_server.wait_for_call("pick/1", timeout=5)
    assert reply.body["replace_original"] is True
    assert HYPERSONIC in json.dumps(reply.body["blocks"])


@pytest.mark.parametrize("forgery", [{"secret": "wrong-secret"}, {"age": 301},
                                     {"alter": True}])
def test_forged_stale_or_altered_requests_are_refused(alertbot: Alertbot,
                                                      slack_server: FakeSlack,
                                                      forgery: dict[str, Any]) -> None:
    assert command(alertbot, "hgv-test", slack_server, **forgery).status_code == 401


def listed(response: httpx.Response) -> list[str]:
    blocks = response.json()["blocks"]
    return [json.dumps(b).split("/story ")[1].split("`")[0] for b in blocks[1:]
            if "/story " in json.dumps(b)]


def test_actionitems_lists_recent_action_items_newest_first(alertbot: Alertbot,
                                                            slack_server: FakeSlack) -> None:
    # 200 bulk stories: impact 8 or 9 for 80 of them; plus hgv-test. Impact < 8 never lists.
    today = command(alertbot, "", slack_server, name="/actionitems")
    assert today.json()["blocks"][0]["text"]["text"] == "*81 action items in the last 24 hours*"
    assert len(listed(today)) == 15
    assert "+66 more" in json.dumps(today.json()["blocks"][-1])
    week = command(alertbot, "week", slack_server, name="/actionitems").json()
    assert week["blocks"][0]["text"]["text"] == "*82 action items in the last 7 days*"


def test_actionitems_with_words_filters_titles(alertbot: Alertbot, slack_server: FakeSlack
                                               ) -> None:
    found = command(alertbot, "hypersonic", slack_server, name="/actionitems")
    assert listed(found) == ["hgv-test", "old-action"]  # newest first; the budget story is 7
    none = command(alertbot, "zeppelin", slack_server, name="/actionitems").json()
    assert "Nothing to act on" in none["blocks"][0]["text"]["text"]


def alerts(bot: Alertbot, slack: FakeSlack, text: str, channel: str = "C0NEW",
           user: str = "U1") -> str:
    response = command(bot, text, slack, name="/alerts", channel=channel, user=user)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def push(bot: Alertbot, story_id: str, **fields: Any) -> dict[str, Any]:
    answer = bot.push([story(id=story_id, title=f"Title of {story_id}", **fields)])
    assert answer.status_code == 202
    return dict(answer.json())


def test_alerts_subscribe_filters_then_status_then_unsubscribe(alertbot: Alertbot,
                                                               slack_server: FakeSlack) -> None:
    said = alerts(alertbot, slack_server, "subscribe launch impact>=9")
    assert said == ("Subscribed <#C0NEW> to action items: topics launch, impact ≥ 9, "
                    "≥ 2 sources. New action items arrive here as they are scored.")
    push(alertbot, "launch-9", topics=["launch"], impact=9)
    push(alertbot, "launch-8", topics=["launch"], impact=8)
    push(alertbot, "budget-9", topics=["budget"], impact=9)
    push(alertbot, "launch-10", topics=["launch"], impact=10)
    # One channel's rows go out in order: once the last arrives, anything planned before it has.
    slack_server.wait_for(lambda: len(slack_server.posts("C0NEW")) >= 2, 10, lambda: "posts")
    assert ["Title of launch-9" in c.body["text"] for c in slack_server.posts("C0NEW")] == [
        True, False]
    assert "Title of launch-10" in slack_server.posts("C0NEW")[1].body["text"]

    status = alerts(alertbot, slack_server, "status")
    assert status.startswith("*Route:* topics launch, impact ≥ 9, ≥ 2 sources (set by <@U1>)")
    assert status.count("• alert, sent") == 2

    assert alerts(alertbot, slack_server, "unsubscribe") == (
        "Unsubscribed <#C0NEW>: no more alerts here.")
    assert push(alertbot, "launch-9-later", topics=["launch"], impact=9)["matched"] == 0
    assert alerts(alertbot, slack_server, "unsubscribe") == (
        "<#C0NEW> had no alerts subscription.")


def test_alerts_me_delivers_as_a_direct_message(alertbot: Alertbot, slack_server: FakeSlack
                                                ) -> None:
    said = alerts(alertbot, slack_server, "me subscribe cyber", user="U2")
    assert said.startswith("Subscribed your DMs to action items: topics cyber")
    push(alertbot, "cyber-dm", topics=["cyber"], impact=9)
    slack_server.wait_for(lambda: bool(slack_server.posts("U2")), 10, lambda: "no DM")
    [dm] = slack_server.posts("U2")
    assert "Title of cyber-dm" in dm.body["text"]
    assert "Why: impact 9 ≥ 8 · 2 independent sources ≥ 2 · your DM subscription (cyber)" in (
        json.dumps(dm.body["blocks"], ensure_ascii=False))
    assert alerts(alertbot, slack_server, "me unsubscribe", user="U2").startswith(
        "Unsubscribed your DMs")


def test_alerts_channel_changes_need_an_admin_and_config_routes_are_read_only(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    assert alerts(alertbot, slack_server, "subscribe", user="U2").startswith(
        "Only the desk's alert admins can change the alerts of <#C0NEW>")
    assert alerts(alertbot, slack_server, "subscribe", channel="C0CONFIG").startswith(
        "<#C0CONFIG> gets alerts from a route in alertbot's config file")
    assert alerts(alertbot, slack_server, "status", channel="C0CONFIG", user="U2").startswith(
        "*Route:* topics nothing-matches, impact ≥ 8, ≥ 2 sources (config file, read-only)")


@pytest.mark.parametrize(("text", "reply"), [
    ("", "*Usage:* `/alerts subscribe"),
    ("subscribe impact>=11", "*`impact&gt;=11`: impact is a number from 1 to 10.*"),
    ("subscribe quiet 25:00-07:00", "*`quiet 25:00-07:00`: give a range such as"),
    ("subscribe quiet 22:00-07:00 Mars/Base", "*`Mars/Base` is not a time zone"),
    ("<!channel>", "*`&lt;!channel&gt;` is not a command.*"),
])
def test_alerts_explains_a_malformed_argument(alertbot: Alertbot, slack_server: FakeSlack,
                                              text: str, reply: str) -> None:
    assert alerts(alertbot, slack_server, text).startswith(reply)


def press(bot: Alertbot, slack: FakeSlack, action_id: str, value: str, message_ts: str,
          reply_path: str) -> None:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
               "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
               "container": {"type": "message", "message_ts": message_ts, "channel_id": "C0X",
                             "is_ephemeral": False},
               "channel": {"id": "C0X"}, "message": {"ts": message_ts},
               "response_url": f"{slack.url}{reply_path}",
               "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                            "value": value, "action_ts": "1"}]}
    ack = post(bot, {"payload": json.dumps(payload)})
    assert ack.status_code == 200 and ack.content == b""


def test_key_facts_go_in_the_alerts_thread_once(alertbot: Alertbot, slack_server: FakeSlack
                                                ) -> None:
    press(alertbot, slack_server, "key_facts", "hgv-test", "1700000000.000777", "facts/1")
    slack_server.wait_for(
        lambda: any(c.body.get("thread_ts") == "1700000000.000777" for c in slack_server.posts()),
        10, lambda: "no key facts in the thread")
    [facts] = [c for c in slack_server.posts() if c.body.get("thread_ts") == "1700000000.000777"]
    assert facts.body["channel"] == "C0X"
    text = json.dumps(facts.body["blocks"])
    assert "1. Telemetry was lost after booster separation" in text
    assert "2. Third test this year" in text

    press(alertbot, slack_server, "key_facts", "hgv-test", "1700000000.000777", "facts/2")
    again = slack_server.wait_for_call("facts/2", timeout=5)
    assert again.body["text"] == "The key facts are already in this alert's thread."
    assert len([c for c in slack_server.posts()
                if c.body.get("thread_ts") == "1700000000.000777"]) == 1


def test_alerts_quiet_hours_use_the_persons_zone_unless_one_is_given(alertbot: Alertbot,
                                                                     slack_server: FakeSlack
                                                                     ) -> None:
    said = alerts(alertbot, slack_server, "me subscribe quiet 22:00-07:00", user="U3")
    assert "quiet 22:00-07:00 America/New_York" in said  # from users.info
    said = alerts(alertbot, slack_server, "me subscribe launch quiet 23:00-06:30 Europe/London",
                  user="U3")
    assert "topics launch, impact ≥ 8, ≥ 2 sources, quiet 23:00-06:30 Europe/London" in said
    assert "quiet 23:00-06:30 Europe/London" in alerts(alertbot, slack_server, "me status",
                                                       user="U3")
    alerts(alertbot, slack_server, "me unsubscribe", user="U3")


def test_alerts_acks_before_it_asks_slack_or_writes_anything(alertbot: Alertbot,
                                                              slack_server: WatchedSlack) -> None:
    # Quiet hours without a zone need the person's zone from users.info, held unanswered here
    # until the test resumes it: the ack must not wait for it, nor for the database write after.
    slack_server.pause("users.info")
    slack_server.asked.clear()
    try:
        started = time.monotonic()
        ack, path = ask(alertbot, "me subscribe quiet 22:00-07:00", slack_server,
                        name="/alerts", user="U4")
        acked = time.monotonic() - started
        assert ack.status_code == 200 and ack.content == b"", ack.text
        assert acked < 3.0, f"acked after {acked:.2f} s"  # users.info is still held
        assert slack_server.asked.wait(5), "users.info was never asked"
        assert not [c for c in slack_server.calls if c.method == path]  # nothing said yet
        # Nothing written yet either: the route only exists once users.info has answered.
        assert alerts(alertbot, slack_server, "me status", user="U4").startswith(
            "*No alerts route* for your DMs")
    finally:
        slack_server.resume("users.info")
    reply = slack_server.wait_for_call(path, timeout=10)
    [asked] = [c for c in slack_server.calls if c.method == "users.info" and c.body["user"] == "U4"]
    assert reply.at >= asked.at
    assert reply.body["response_type"] == "ephemeral"
    assert "quiet 22:00-07:00 America/New_York" in reply.body["text"]
    assert alerts(alertbot, slack_server, "me unsubscribe", user="U4").startswith("Unsubscribed")


def test_alerts_when_users_info_fails_answers_in_utc(alertbot: Alertbot,
                                                     slack_server: WatchedSlack) -> None:
    slack_server.fail_next("users.info", status=500)
    said = alerts(alertbot, slack_server, "me subscribe quiet 22:00-07:00", user="U5")
    assert said.startswith("Subscribed your DMs to action items: all topics, impact ≥ 8")
    assert "quiet 22:00-07:00 UTC" in said
    alerts(alertbot, slack_server, "me unsubscribe", user="U5")


def test_open_story_is_only_acknowledged(alertbot: Alertbot, slack_server: WatchedSlack) -> None:
    press(alertbot, slack_server, "open_story", "hgv-test", "1700000000.000888", "open/1")
    time.sleep(0.3)  # an answer would have arrived by now (they take milliseconds)
    assert not [c for c in slack_server.calls if c.method == "open/1"]


async def test_work_that_fails_after_the_ack_is_still_answered() -> None:
    said: list[dict[str, Any]] = []

    async def respond(**reply: Any) -> None:
        said.append(reply)

    async def database_away() -> dict[str, Any]:
        raise ConnectionError("the database is away")

    await reply_later(respond, database_away())  # type: ignore[arg-type]
    assert said[0]["response_type"] == "ephemeral"
    assert said[0]["text"].startswith("Sorry, alertbot could not answer that just now.")


async def test_work_handed_to_later_runs_after_the_listener_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()
        raise ValueError("a malformed snooze value")

    later(work())
    assert not ran.is_set()  # the listener returns (and Bolt acks) before the work starts
    await ran.wait()
    await asyncio.sleep(0)  # the task's done-callback runs on the loop's next turn
    failed = [r.exc_info for r in caplog.records if "failed after its ack" in r.getMessage()]
    assert failed and failed[0] is not None and isinstance(failed[0][1], ValueError)


def press_item(bot: Alertbot, slack: FakeSlack, action: dict[str, Any], user: str,
               action_ts: str) -> str:
    """Press an action-item control as `user`; return where a refusal would be answered."""
    path = reply_path("items")
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
               "api_app_id": "A1", "token": "x", "trigger_id": "1.2.3",
               "container": {"type": "message", "message_ts": "1700000000.000900",
                             "channel_id": "C0X", "is_ephemeral": False},
               "channel": {"id": "C0X"}, "message": {"ts": "1700000000.000900"},
               "response_url": f"{slack.url}{path}",
               "actions": [{"block_id": "alert_actions", "action_ts": action_ts, **action}]}
    ack = post(bot, {"payload": json.dumps(payload)})
    assert ack.status_code == 200 and ack.content == b""  # acked empty, before any work
    return path


def claim(story_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": "item_claim", "value": story_id}


def submit_done(bot: Alertbot, story_id: str, user: str, view_id: str, note: str | None = None,
                name: str | None = None) -> None:
    """Submit the Done modal (its button opens it: tests/test_slack_action_doors.py)."""
    submission = {
        "type": "view_submission", "team": {"id": "T1"},
        "user": {"id": user, **({"name": name} if name else {})},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.9",
        "view": {"id": view_id, "callback_id": "item_done", "type": "modal",
                 "private_metadata": story_id, "state": {"values": {
                     "note": {"note": {"type": "plain_text_input", "value": note}}}}}}
    ack = post(bot, {"payload": json.dumps(submission)})
    assert ack.status_code == 200 and ack.content == b""  # an empty ack closes the modal


def test_a_second_claim_by_another_person_is_told_who_holds_it_and_a_replay_is_silent(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    first = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.1")
    # Her second, separate press (a new action_ts) is refused once the first is stored: the
    # event to await before Bo presses (lazy halves may otherwise run in either order).
    hers = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.15")
    assert slack_server.wait_for_call(hers, timeout=10).body["text"] == (
        "You have already claimed this.")
    second = press_item(alertbot, slack_server, claim("pacific-range"), "U0BO", "1700.2")
    # Ana's press was delivered first; Bo's is refused naming her.
    refused = slack_server.wait_for_call(second, timeout=10)
    assert refused.body["text"] == "Already claimed by <@U0ANA>."
    assert refused.body["response_type"] == "ephemeral"
    replayed = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.1")
    submit_done(alertbot, "pacific-range", "U0ANA", "V0PACIFIC")
    again = press_item(alertbot, slack_server, claim("pacific-range"), "U0BO", "1700.4")
    assert slack_server.wait_for_call(again, timeout=10).body["text"] == (
        "Already done by <@U0ANA>.")
    # Ana's press, its replay and her Done said nothing to her: a press that applies or repeats
    # is silent (a replay applied again would have answered "You have already claimed this.").
    assert [c for c in slack_server.calls if c.method in (first, replayed)] == []


def test_not_relevant_opens_a_modal_whose_submission_records_the_dismissal(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    path = press_item(alertbot, slack_server, {"type": "button", "action_id": "item_dismiss",
                                                "value": "hypersonic-budget"}, "U0BO", "1800.1")
    opened = slack_server.wait_for_call("views.open", timeout=10)
    view = opened.body["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert opened.body["trigger_id"] == "1.2.3"
    # The story, and where a refused submission is answered: the press's response_url.
    assert (view["callback_id"], view["private_metadata"]) == (
        "item_dismiss", f"hypersonic-budget\n{slack_server.url}{path}")
    reasons = view["blocks"][1]["element"]["options"]
    assert [o["value"] for o in reasons] == ["wrong_impact", "not_our_beat", "duplicate", "other"]

    submission = {
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.4",
        "view": {**view, "id": "V0DISMISS1", "state": {"values": {
            "reason": {"reason": {"type": "radio_buttons",
                                  "selected_option": {"value": "not_our_beat"}}},
            "note": {"note": {"type": "plain_text_input", "value": "sports desk's"}}}}}}
    for _ in range(2):  # delivered twice: recorded once
        ack = post(alertbot, {"payload": json.dumps(submission)})
        assert ack.status_code == 200 and ack.content == b""  # an empty ack closes the modal
    # No message shows the dismissal yet, so the audit rows are the event to wait for.
    rows = presses(alertbot, "hypersonic-budget", lambda found: len(found) >= 1)
    assert [(r.user, r.action, r.outcome, r.reason, r.note) for r in rows] == [
        ("U0BO", "dismiss", "dismissed", "not_our_beat", "sports desk's")]
    refused = press_item(alertbot, slack_server,
                         {"type": "button", "action_id": "item_claim",
                          "value": "hypersonic-budget"}, "U0ANA", "1800.2")
    assert slack_server.wait_for_call(refused, timeout=10).body["text"] == (
        "Already dismissed by <@U0BO>.")


def presses(bot: Alertbot, story_id: str, ready: Any, timeout: float = 10) -> list[Any]:
    """The story's audit rows once `ready(rows)` holds (read from the service's database)."""
    engine = database.create(bot.env["DATABASE_URL"])
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as db:
                rows = actions.history(db, story_id)
            if ready(rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)  # the lazy half commits on its own thread; nothing to await here
    finally:
        engine.dispose()


def updates(slack: FakeSlack, ts: str) -> list[Any]:
    return [c for c in slack.calls if c.method == "chat.update" and c.body.get("ts") == ts]


def thread(slack: FakeSlack, ts: str) -> list[Any]:
    return [c for c in slack.posts() if c.body.get("thread_ts") == ts]


def test_each_posted_message_shows_who_owns_the_item_once_per_change(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    for channel in ("C0OWNA", "C0OWNB"):
        assert alerts(alertbot, slack_server, "subscribe ownership", channel=channel).startswith(
            "Subscribed")
    push(alertbot, "owned-story", topics=["ownership"], impact=9)
    slack_server.wait_for(lambda: all(slack_server.posts(c) for c in ("C0OWNA", "C0OWNB")),
                          10, lambda: "not posted to both channels")
    # The fake answers each post with a ts of its own; the outbox keeps it as the message's id.
    ts = {c: _posted_ts(alertbot, c) for c in ("C0OWNA", "C0OWNB")}
    assert len(set(ts.values())) == 2

    def shown_everywhere(count: int, says: str) -> None:
        slack_server.wait_for(
            lambda: all(len(updates(slack_server, t)) >= count
                        and len(thread(slack_server, t)) >= count for t in ts.values()),
            10, lambda: f"not every message edited {count} times")
        for channel, t in ts.items():
            edits, replies = updates(slack_server, t), thread(slack_server, t)
            assert (len(edits), len(replies)) == (count, count)
            assert edits[-1].body["channel"] == channel
            edited = json.dumps(edits[-1].body["blocks"], ensure_ascii=False)
            assert says in edited and "Title of owned-story" in edited and "9/10" in edited
            assert says in replies[-1].body["text"]

    owned = {"type": "button", "action_id": "item_claim", "value": "owned-story"}
    press_item(alertbot, slack_server, owned, "U0ANA", "1900.1")
    shown_everywhere(1, "Claimed by <@U0ANA>")
    bo = press_item(alertbot, slack_server, owned, "U0BO", "1900.2")
    assert slack_server.wait_for_call(bo, timeout=10).body["text"] == (
        "Already claimed by <@U0ANA>.")
    press_item(alertbot, slack_server, owned, "U0ANA", "1900.1")  # Slack's retry of Ana's
    submit_done(alertbot, "owned-story", "U0ANA", "V0OWNDONE")
    # Two edits each, not three: neither Bo's refused claim nor the replay edited anything.
    shown_everywhere(2, "Done by <@U0ANA>")
    submission = {
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.5",
        "view": {"id": "V0OWNED", "callback_id": "item_dismiss", "type": "modal",
                 "private_metadata": "owned-story", "state": {"values": {
                     "reason": {"reason": {"type": "radio_buttons",
                                           "selected_option": {"value": "not_our_beat"}}},
                     "note": {"note": {"type": "plain_text_input", "value": "<!channel> sport"}},
                 }}}}
    assert post(alertbot, {"payload": json.dumps(submission)}).status_code == 200
    # The note is the person's text: escaped, so it pings nobody.
    shown_everywhere(3, "Dismissed by <@U0BO>: not our beat — &lt;!channel&gt; sport")
    reopen = {"type": "button", "action_id": "item_reopen", "value": "owned-story"}
    press_item(alertbot, slack_server, reopen, "U0BO", "1900.4")
    shown_everywhere(4, "Open again: nobody has it")
    snooze = {"type": "static_select", "action_id": "item_snooze",
              "selected_option": {"value": "1h:owned-story"}}
    press_item(alertbot, slack_server, snooze, "U0ANA", "1900.5")
    shown_everywhere(5, ":zzz: Snoozed until ")


def test_a_rescored_story_keeps_showing_its_owner_when_its_message_is_edited(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    assert alerts(alertbot, slack_server, "subscribe rescored",
                  channel="C0RESC").startswith("Subscribed")
    push(alertbot, "rescored-story", topics=["rescored"], impact=9, version=1)
    slack_server.wait_for(lambda: bool(slack_server.posts("C0RESC")), 10, lambda: "not posted")
    ts = _posted_ts(alertbot, "C0RESC")
    claim = {"type": "button", "action_id": "item_claim", "value": "rescored-story"}
    press_item(alertbot, slack_server, claim, "U0ANA", "1950.1")
    slack_server.wait_for(lambda: len(updates(slack_server, ts)) == 1, 10, lambda: "no edit")
    # A re-score edits the message again: its figures change, and its owner stays shown.
    push(alertbot, "rescored-story", topics=["rescored"], impact=10, version=2)
    slack_server.wait_for(lambda: len(updates(slack_server, ts)) == 2, 10,
                          lambda: "the re-score did not edit the message")
    edited = json.dumps(updates(slack_server, ts)[-1].body["blocks"], ensure_ascii=False)
    assert "10/10" in edited
    assert "Claimed by <@U0ANA>" in edited


def _posted_ts(bot: Alertbot, channel: str, timeout: float = 10) -> str:
    """The Slack ts the outbox stored for the alert posted to `channel` (once it is stored:
    the worker records it just after Slack answers)."""
    engine = database.create(bot.env["DATABASE_URL"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as db:
                ts = db.scalar(select(DELIVERIES.c.remote_id).where(
                    DELIVERIES.c.target == f"slack:{channel}", DELIVERIES.c.kind == "alert"))
            if ts:
                return str(ts)
            time.sleep(0.02)  # the worker's commit is not an event this process can await
    finally:
        engine.dispose()
    raise AssertionError(f"no posted alert stored for {channel}")
