"""Listings as README.md writes them: `alertbot deliveries [list] [--status S] [--json]`, and
one table printer (header row, aligned columns) for deliveries, subscribers and rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import story
from tests.process import Alertbot

TOML = '[[slack.routes]]\nchannel = "C0SPACEOPS"\n'


def read_table(lines: list[str]) -> list[dict[str, str]]:
    """The rows of a table, asserting that every column starts at the same place on every line:
    where the header names it, after two spaces."""
    header = lines[0]
    names = header.split()
    starts = [header.index(name) for name in names]
    for line in lines:
        for start in starts[1:]:
            assert line[start - 2:start] == "  " and line[start] != " ", (start, line)
    ends = [*starts[1:], None]
    return [{name: line[start:end].strip() for name, start, end in zip(names, starts, ends,
                                                                        strict=True)}
            for line in lines[1:]]


@pytest.fixture
def desk(tmp_path: Path) -> Alertbot:
    """One pending alert (a stored story, not yet delivered) and one sent test message."""
    bot = Alertbot.make(tmp_path, TOML)
    source = tmp_path / "news.json"
    source.write_text(json.dumps(story(id="pending-one")))
    assert bot.cli("ingest", str(source)).returncode == 0
    sent = bot.cli("test", "slack", "C0TESTS")  # no token: written under outbox/, and sent
    assert sent.returncode == 0, sent.stderr
    return bot


def test_the_bare_group_takes_the_list_options(desk: Alertbot) -> None:
    as_list = json.loads(desk.cli("deliveries", "list", "--json").stdout)
    assert [(r["status"], r["kind"]) for r in as_list] == [("sent", "test"), ("pending", "alert")]
    assert json.loads(desk.cli("deliveries", "--json").stdout) == as_list
    assert json.loads(desk.cli("deliveries", "--json", "list").stdout) == as_list
    sent = json.loads(desk.cli("deliveries", "--status", "sent", "--json").stdout)
    assert [(r["status"], r["target"]) for r in sent] == [("sent", "slack:C0TESTS")]
    pending = desk.cli("deliveries", "--status", "pending")
    assert pending.returncode == 0, pending.stderr
    assert "slack:C0SPACEOPS" in pending.stdout and "C0TESTS" not in pending.stdout
    assert desk.cli("deliveries", "--status", "dead").stdout == "(none)\n"


def test_retry_still_works_and_refuses_the_list_options(desk: Alertbot) -> None:
    assert desk.cli("deliveries", "retry", "--dead").stdout == "0 deliveries queued again\n"
    retried = desk.cli("deliveries", "retry", "1")
    assert retried.returncode == 1 and "delivery 1 is not failed or dead" in retried.stderr
    mixed = desk.cli("deliveries", "--json", "retry", "1")
    assert mixed.returncode == 2
    assert "--status and --json list deliveries" in mixed.stderr


def test_deliveries_print_a_header_and_aligned_columns_with_the_reason_last(
    desk: Alertbot,
) -> None:
    lines = desk.cli("deliveries").stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "KIND", "TARGET", "ATTEMPTS", "CREATED_AT",
                                "SENT_AT", "LAST_ERROR", "REASON"]
    rows = read_table(lines)
    listed = json.loads(desk.cli("deliveries", "--json").stdout)
    assert [row["REASON"] for row in rows] == [r["reason"] for r in listed]  # whole, at the end
    assert all(line.endswith(r["reason"]) for line, r in zip(lines[1:], listed, strict=True))
    assert [row["SENT_AT"][-4:] for row in rows] == [" UTC", "-"]  # to the second, in UTC
    assert rows[1]["LAST_ERROR"] == "-"


def test_subscribers_list_prints_a_header_and_aligned_columns(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    for args in (("a@desk.example", "--mode", "instant"),
                 ("long.name.reader@desk.example", "--tz", "Europe/London", "--topics", "ai")):
        assert bot.cli("subscribers", "add", *args).returncode == 0
    lines = bot.cli("subscribers", "list").stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "MODE", "TZ", "TOPICS", "DIGEST_HOUR", "NEXT_DIGEST",
                                "MIN_IMPACT", "PAUSED_UNTIL"]
    rows = read_table(lines)
    assert [(r["EMAIL"], r["MODE"], r["TZ"], r["TOPICS"]) for r in rows] == [
        ("a@desk.example", "instant", "UTC", "-"),  # "-": no topics chosen, so all of them
        ("long.name.reader@desk.example", "daily", "Europe/London", "ai")]
    # --json is unchanged: an array of objects, empty topics as an empty string
    assert json.loads(bot.cli("subscribers", "list", "--json").stdout)[0]["topics"] == ""


def test_stories_rejected_prints_a_header_and_aligned_columns(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    assert bot.cli("stories", "rejected").stdout == "(none)\n"
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([story(id="no-impact", impact=None),
                                  story(id="a-rather-longer-story-id", impact=12)]))
    assert bot.cli("ingest", str(source)).returncode == 1
    lines = bot.cli("stories", "rejected").stdout.splitlines()
    assert lines[0].split() == ["RECEIVED_AT", "ORIGIN", "STORY_ID", "POSITION", "FIELD",
                                "REASON"]
    rows = read_table(lines)
    assert sorted(r["STORY_ID"] for r in rows) == ["a-rather-longer-story-id", "no-impact"]
    assert {r["FIELD"] for r in rows} == {"impact"}
