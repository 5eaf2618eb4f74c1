"""Every slash command is acked at once and answered inside Slack's 3 s against a database of
100,000 stories."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.corpus import lines
from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_payloads import SECRET, ask

COUNT = 100_000
CONFIG = '[slack]\npacing = "0s"\nbatch_window = "0s"\n'


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Alertbot, FakeSlack, str]]:
    slack = FakeSlack().start()
    tmp = tmp_path_factory.mktemp("scale")
    bot = Alertbot.make(tmp, CONFIG, slack.url, SLACK_SIGNING_SECRET=SECRET)
    corpus = list(lines(COUNT))
    (tmp / "stories.jsonl").write_text("\n".join(corpus) + "\n")
    ingested = bot.cli("ingest", str(tmp / "stories.jsonl"))
    assert ingested.returncode == 0, ingested.stderr
    bot.start()
    yield bot, slack, corpus[COUNT // 2]
    bot.stop()
    slack.stop()


@pytest.mark.parametrize(("name", "text"), [
    ("/story", "{id}"), ("/story", "{url}"), ("/story", "{title}"), ("/story", "satellite launch"),
    ("/story", "nosuchword"), ("/actionitems", ""), ("/actionitems", "week"),
    ("/actionitems", "satellite"), ("/alerts", "status"), ("/alerts", "subscribe launch"),
    ("/alerts", "unsubscribe"),
])
def test_every_command_is_acked_and_answered_within_three_seconds(
    big: tuple[Alertbot, FakeSlack, str], name: str, text: str,
) -> None:
    bot, slack, sample = big
    story = json.loads(sample)
    query = text.format(id=story["id"], url=story["url"], title=story["title"])
    started = time.monotonic()
    ack, path = ask(bot, query, slack, name=name)
    acked = time.monotonic() - started
    assert ack.status_code == 200 and ack.content == b"", ack.text
    reply = slack.wait_for_call(path, timeout=10)
    answered = reply.at - started
    assert reply.body["text"]
    assert acked < 3.0, f"{name} {text}: acked after {acked:.2f} s"
    assert answered < 3.0, f"{name} {text}: answered after {answered:.2f} s"
    if text in ("{id}", "{url}", "{title}"):
        assert story["title"][:40] in json.dumps(reply.body)
