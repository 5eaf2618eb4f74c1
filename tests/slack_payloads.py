"""Slack's side of the Slack test modules: an `alertbot run` with the desk's Slack config and
signing secret, and the requests Slack signs and sends it on /slack/events (slash commands,
button presses, modal submissions, events), plus what the tests read back from its database.

A helper module, not a conftest: each test module names what it uses, and keeps its own
module-scoped fixtures (its fake Slack's people, its stories) built from `fake_slack` and
`running_desk`."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from bot import db as database
from bot.db.schema import DELIVERIES
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
S = TypeVar("S", bound=FakeSlack)


def fake_slack(fake: S) -> Iterator[S]:
    """A module fixture's body: `fake` serving meanwhile."""
    fake.start()
    yield fake
    fake.stop()


def running_desk(tmp: Path, slack: FakeSlack, stories: list[dict[str, Any]],
                 prepare: Callable[[Alertbot], None] | None = None) -> Iterator[Alertbot]:
    """A module fixture's body: `slack_desk`, then `prepare(bot)` (what must be stored before
    it starts), running meanwhile."""
    bot = slack_desk(tmp, slack, stories)
    if prepare is not None:
        prepare(bot)
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
    """A signed form post (a slash command, or an interaction's `payload`), as Slack sends it;
    `secret`, `age` and `alter` forge, age or alter it after signing."""
    body = urlencode(form)
    timestamp = str(int(time.time()) - age)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": timestamp,
               "X-Slack-Signature": slack_signature(secret, timestamp, body)}
    if alter:
        body = body.replace("hgv-test", "hgv-tesT")
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)


def signed_json(bot: Alertbot, body: dict[str, Any]) -> httpx.Response:
    """A signed Events API callback (JSON, not a form)."""
    raw = json.dumps(body)
    timestamp = str(int(time.time()))
    return httpx.post(f"{bot.url}/slack/events", content=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(SECRET, timestamp, raw)})


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


def alerts(bot: Alertbot, slack: FakeSlack, text: str, channel: str = "C0NEW",
           user: str = "U1") -> str:
    """`/alerts text`'s reply."""
    response = command(bot, text, slack, name="/alerts", channel=channel, user=user)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def push(bot: Alertbot, story_id: str, **fields: Any) -> dict[str, Any]:
    """Push one story (titled "Title of <id>") to the running service; its answer."""
    answer = bot.push([story(id=story_id, title=f"Title of {story_id}", **fields)])
    assert answer.status_code == 202
    return dict(answer.json())


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
    """The chat.update calls that edited the message `ts`."""
    return [c for c in slack.calls if c.method == "chat.update" and c.body.get("ts") == ts]


def thread(slack: FakeSlack, ts: str) -> list[Any]:
    """The posts in the thread of the message `ts`."""
    return [c for c in slack.posts() if c.body.get("thread_ts") == ts]


def posted_ts(bot: Alertbot, channel: str, timeout: float = 10) -> str:
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
