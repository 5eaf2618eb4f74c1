"""The App Home "My alerts" tab's side of Slack, for its test modules: the signed events,
button presses and modal submissions Slack sends, what the local Slack Web API was asked to
publish or open, and the reader the service stored."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from slack_sdk.models.views import View

from bot import db as database
from bot.readers import subscribers
from tests.fakes import Call, FakeSlack
from tests.process import Alertbot
from tests.slack_payloads import post, signed_json


def publishes(slack: FakeSlack, user: str) -> list[Call]:
    return [c for c in slack.calls if c.method == "views.publish" and c.body["user_id"] == user]


def wait_publishes(slack: FakeSlack, user: str, count: int) -> Call:
    """Block until `user`'s Home tab was published `count` times; the last one."""
    slack.wait_for(lambda: len(publishes(slack, user)) >= count, 10,
                   lambda: f"{len(publishes(slack, user))} publishes for {user}, not {count}")
    return publishes(slack, user)[count - 1]


def open_home(bot: Alertbot, user: str, tab: str = "home") -> None:
    ack = signed_json(bot, {
        "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": f"Ev{user}{time.monotonic_ns()}", "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
                  "event_ts": f"{time.time():.6f}"}})
    assert ack.status_code == 200 and ack.content == b"", ack.text


def shown(call: Call) -> dict[str, Any]:
    """A published view, as Slack's Block Kit models take it (they raise if it is invalid)."""
    view: dict[str, Any] = call.body["view"]
    View(**view).validate_json()
    return view


def text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)

def press(bot: Alertbot, user: str, action_id: str, value: str) -> None:
    """A button on the person's Home tab: no response_url, a view container."""
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user},
               "api_app_id": "A1", "token": "x", "trigger_id": f"{user}.trigger",
               "container": {"type": "view", "view_id": "V0HOME"},
               "view": {"id": "V0HOME", "type": "home"},
               "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                            "value": value, "action_ts": f"{time.time():.6f}"}]}
    ack = post(bot, {"payload": json.dumps(payload)})
    assert ack.status_code == 200 and ack.content == b""


def opened_modal(slack: FakeSlack, user: str) -> dict[str, Any]:
    trigger = f"{user}.trigger"
    slack.wait_for(lambda: any(c.method == "views.open" and c.body.get("trigger_id") == trigger
                               for c in slack.calls), 10, lambda: f"no modal for {user}")
    call = [c for c in slack.calls if c.method == "views.open"
            and c.body.get("trigger_id") == trigger][-1]
    view: dict[str, Any] = call.body["view"]
    View(**view).validate_json()
    return view


def submit(bot: Alertbot, user: str, modal: dict[str, Any], values: dict[str, dict[str, Any]]
           ) -> httpx.Response:
    """Press Save on `modal` with `values` (block → Slack's state of its element)."""
    state = {block: {block: element} for block, element in values.items()}
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": user},
               "api_app_id": "A1", "token": "x", "trigger_id": f"{user}.submit",
               "view": {**modal, "id": f"V0{user}", "state": {"values": state}}}
    return post(bot, {"payload": json.dumps(payload)})


def text_input(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def stored_reader(bot: Alertbot, email: str) -> subscribers.Subscriber | None:
    """The email subscriber `email` as the service stored it."""
    engine = database.create(bot.env["DATABASE_URL"])
    try:
        with engine.connect() as db:
            return subscribers.find(db, email)
    finally:
        engine.dispose()


def email_form(mode: str = "both", topics: str = "launch, cyber", hour: str = "06:30",
               zone: str = "Europe/Paris", paused: str | None = None
               ) -> dict[str, dict[str, Any]]:
    return {"mode": {"type": "radio_buttons", "selected_option": {"value": mode}},
            "topics": text_input(topics), "timezone": text_input(zone),
            "digest_hour": {"type": "timepicker", "selected_time": hour},
            "paused_until": {"type": "datepicker", "selected_date": paused}}
