"""Hostile and random input (Hypothesis): parsing and every HTTP endpoint answer, never crash.

Over 10,000 generated payloads in all: story parsing, POST /api/stories, POST /slack/events and
/unsubscribe/<token>, each through the real app in process on SQLite. Every rejection names its
field and reason; forged, stale and altered Slack requests get 401.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.service import Service
from bot.slack_app import create_slack_app
from bot.stories.parsing import UnusableInput, parse_batch
from bot.web.app import create_app
from bot.web.limits import ClientLimit
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, slack_signature

SECRET = "hostile-signing-secret"
TOKEN = "hostile-ingest-token"


def examples(count: int) -> settings:
    # The app fixture lives across a test's examples on purpose (one database, one app).
    return settings(max_examples=count, deadline=None, suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
FIELDS = [*story().keys(), "verified_by", "version", "timeline", "sources"]
# A valid story with one field replaced by anything, or one field dropped.
mutated_stories = st.one_of(
    st.builds(lambda key, value: {**story(id="h"), key: value}, st.sampled_from(FIELDS),
              json_values),
    st.builds(lambda key: {k: v for k, v in story(id="h").items() if k != key},
              st.sampled_from(FIELDS)),
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(mutated_stories, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.lists(mutated_stories, min_size=1, max_size=4).map(
        lambda v: "\n".join(json.dumps(s) for s in v).encode()),  # JSON Lines
)


def check_rejections(rejections: list[Any]) -> None:
    for rejection in rejections:
        field = rejection["field"] if isinstance(rejection, dict) else rejection.field
        reason = rejection["reason"] if isinstance(rejection, dict) else rejection.reason
        assert field and reason and "Traceback" not in reason


@examples(4000)
@given(bodies)
def test_parsing_anything_gives_stories_or_named_rejections(body: bytes) -> None:
    try:
        batch = parse_batch(body)
    except UnusableInput as exc:
        assert str(exc)
        return
    check_rejections(batch.rejections)


def test_deeply_nested_input_is_refused_not_crashed() -> None:
    with pytest.raises(UnusableInput, match="nested too deeply"):
        parse_batch(b"[" * 100_000 + b"]" * 100_000)
    deep_field = json.dumps([{**story(id="deep"), "extra": [[[[[[[[[[1]]]]]]]]]] * 4}])
    batch = parse_batch(deep_field.replace("[1]", "[" * 40 + "1" + "]" * 40))
    assert [(r.field, r.reason) for r in batch.rejections] == [
        ("story", "nested deeper than 32 levels")]


class InProcess:
    """The service's HTTP app on this thread's own event loop (Hypothesis tests are sync)."""

    def __init__(self, tmp: Path, url: str, slack: FakeSlack) -> None:
        self.loop = asyncio.new_event_loop()
        config = make_config(tmp, url, slack_bot_token="xoxb-hostile", slack_api_url=slack.url,
                             slack_signing_secret=SECRET, ingest_token=TOKEN)
        self.service = Service(config)
        bolt = create_slack_app(config, self.service.db, self.service.dispatcher.wake)
        app = create_app(self.service.push, self.service.ready, TOKEN, bolt,
                         self.service.unsubscribe, self.service.exposition,
                         signing_secret=SECRET,
                         # a fuzzer is one client sending thousands: the per-client limit
                         # (tests/test_preferences.py) would answer it 429
                         limit=ClientLimit(per_minute=10**9))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="http://bot")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.service.close())
        self.loop.close()


@pytest.fixture
def web(tmp_path: Path, sqlite_url: str, slack: FakeSlack) -> Iterator[InProcess]:
    app = InProcess(tmp_path, sqlite_url, slack)
    yield app
    app.close()


@examples(3000)
@given(bodies, st.sampled_from(["application/json", "text/plain", ""]))
def test_push_answers_202_or_400_and_names_every_rejection(web: InProcess, body: bytes,
                                                          content_type: str) -> None:
    answer = web.request("POST", "/api/stories", content=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
    assert answer.status_code in (202, 400), answer.text
    if answer.status_code == 202:
        check_rejections(answer.json()["rejected"])
    else:
        assert answer.json()["error"]


slack_forms = st.dictionaries(
    st.sampled_from(["command", "text", "team_id", "channel_id", "user_id", "response_url",
                     "trigger_id", "payload", "type", "token"]),
    st.text(max_size=60), max_size=8)


@examples(2500)
@given(slack_forms, st.sampled_from(["signed", "forged", "stale", "altered", "unsigned"]))
def test_slack_events_never_fail_and_refuse_every_bad_signature(
    web: InProcess, form: dict[str, str], how: str,
) -> None:
    body = urlencode(form)
    stamp = str(int(time.time()) - (301 if how == "stale" else 0))
    signature = slack_signature("not-the-secret" if how == "forged" else SECRET, stamp, body)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if how != "unsigned":
        headers.update({"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature})
    sent = body + "&x=1" if how == "altered" else body
    answer = web.request("POST", "/slack/events", content=sent, headers=headers)
    if how == "signed":
        assert answer.status_code in (200, 400, 404), answer.text
    else:
        assert answer.status_code == 401


@examples(1000)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
       st.sampled_from(["GET", "POST"]))
def test_any_unsubscribe_token_is_answered_and_changes_nothing(web: InProcess, token: str,
                                                              method: str) -> None:
    answer = web.request(method, f"/unsubscribe/{quote(token, safe='')}")
    # 307: Starlette's redirect of a trailing slash ("/unsubscribe/x/"), a path we never send.
    assert answer.status_code in (307, 400, 404), answer.text
