"""`alertbot feedback`: the desk's verdicts, with each story's figures, for the scorers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot import db as database
from bot.rules.claims import Reason, Request, Verb
from bot.stories import actions
from tests.conftest import story
from tests.process import Alertbot

GOOD = '[rules]\nmin_impact = 8\n\n[[slack.routes]]\nchannel = "C0SPACEOPS"\n'
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"


def press(bot: Alertbot, story_id: str, request: Request, ts: str, now: datetime) -> None:
    engine = database.create(bot.env["DATABASE_URL"])
    try:
        with engine.begin() as db:
            key = actions.press_key(ts, request.user, request.verb.value, story_id)
            assert actions.apply(db, story_id, request, now, key).outcome.applied
    finally:
        engine.dispose()


def desk(tmp_path: Path) -> Alertbot:
    """Two stories: one claimed and done with a note, one dismissed as not our beat."""
    bot = Alertbot.make(tmp_path, GOOD)
    source = tmp_path / "two.json"
    source.write_text(json.dumps([story(id="s-done", impact=9, topics=["launch", "ULA"]),
                                  story(id="s-out", topics=["football"])]))
    assert bot.cli("ingest", str(source)).returncode == 0
    press(bot, "s-done", Request(Verb.CLAIM, ANA), "1.1", NOW)
    press(bot, "s-done", Request(Verb.DONE, ANA, note="filed follow-up"), "1.2",
          NOW + timedelta(minutes=20))
    press(bot, "s-out", Request(Verb.DISMISS, BO, note="sport desk", reason=Reason.NOT_OUR_BEAT),
          "2.1", NOW + timedelta(days=1))
    return bot


def test_feedback_json_lists_each_verdict_with_the_storys_figures(tmp_path: Path) -> None:
    bot = desk(tmp_path)
    result = bot.cli("feedback", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [{k: v for k, v in row.items() if k != "at"} for row in rows] == [
        {"story_id": "s-done", "impact": 9.0, "sources": 2, "topics": ["launch", "ULA"],
         "verdict": "done", "reason": None, "note": "filed follow-up", "by": ANA},
        {"story_id": "s-out", "impact": 8.0, "sources": 2, "topics": ["football"],
         "verdict": "dismiss", "reason": "not_our_beat", "note": "sport desk", "by": BO},
    ]  # the claim is not a verdict
    assert [datetime.fromisoformat(row["at"]) for row in rows] == [
        NOW + timedelta(minutes=20), NOW + timedelta(days=1)]


def test_feedback_since_and_csv(tmp_path: Path) -> None:
    bot = desk(tmp_path)
    result = bot.cli("feedback", "--since", "2026-12-02", "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["story_id"], r["verdict"], r["reason"], r["note"], r["topics"], r["by"])
            for r in rows] == [("s-out", "dismiss", "not_our_beat", "sport desk", "football", BO)]
    assert rows[0]["at"] == (NOW + timedelta(days=1)).isoformat()
    table = bot.cli("feedback").stdout
    assert table.splitlines()[0].split()[:4] == ["STORY_ID", "IMPACT", "SOURCES", "TOPICS"]
    assert "launch, ULA" in table and "sport desk" in table


def test_feedback_refuses_a_bad_date_and_two_formats(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    both = bot.cli("feedback", "--json", "--csv")
    assert both.returncode == 1 and both.stderr.strip() == (
        "alertbot: give --json or --csv, not both")
    bad = bot.cli("feedback", "--since", "yesterday")
    assert bad.returncode == 2 and "'yesterday' is not a date" in bad.stderr
    empty = bot.cli("feedback", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
