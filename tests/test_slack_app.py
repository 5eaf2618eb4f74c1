"""The Slack app door: signed slash commands and button clicks to a running `alertbot run`:
`/story`, `/actionitems`, the key-facts and open buttons, and work done after the ack.
(`/alerts` is tested in test_slack_alerts.py, the action items' buttons in
test_slack_claims.py; the signed requests are built in tests/slack_payloads.py.)"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.slack_app.replies import later, reply_later
from tests.conftest import story
from tests.fakes import FakeSlack, slack_signature
from tests.process import Alertbot
from tests.slack_payloads import SECRET as SECRET  # test_replicas.py imports it from here
from tests.slack_payloads import ask, command, fake_slack, post, running_desk

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


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack())


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    yield from running_desk(tmp_path_factory.mktemp("slackapp"), slack_server,
                            fixture_stories())


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


def test_open_story_is_only_acknowledged(alertbot: Alertbot, slack_server: FakeSlack) -> None:
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
