"""Rows ingest writes through the driver (bot/db/bulk.py) read back as SQLAlchemy wrote them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.db import Database, bulk
from bot.db.schema import DELIVERIES, MATCHES, STORIES
from bot.pipeline import Pipeline
from bot.stories import archive
from bot.stories.parsing import parse_batch
from tests.conftest import make_config, story

NOW = datetime(2026, 12, 2, 1, 30, 0, tzinfo=UTC)
ROUTES = {"slack": {"routes": [{"channel": "C0DESK"}]}}


async def test_stored_stories_and_matches_read_back_with_their_times_and_figures(
    database_url: str, tmp_path: Path,
) -> None:
    database = Database(database_url)
    pipeline = Pipeline(database, make_config(tmp_path, database_url, ROUTES))
    scored = datetime(2026, 12, 2, 2, 0, 0, 123, tzinfo=timezone(timedelta(hours=2)))
    batch = [story(id="a", impact=9, scored_at=scored.isoformat()),
             story(id="b", impact=6, scored_at=scored.isoformat())]
    report = await pipeline.ingest(parse_batch(json.dumps(batch)), "test", NOW)
    assert (report.accepted, report.matched) == (["a", "b"], 1)
    with database.engine.connect() as db:
        rows = {row.id: row for row in db.execute(select(STORIES))}
        assert rows["a"].scored_at == scored.astimezone(UTC)  # aware, UTC, microseconds kept
        assert (rows["a"].updated_at, rows["a"].qualified_at) == (NOW, NOW)
        assert (rows["a"].qualifies, rows["b"].qualifies) == (True, False)
        assert (rows["a"].qualified_seq, rows["b"].qualified_at) == (1, None)
        assert archive.load(db, ["a"])["a"].title == batch[0]["title"]
        # Stored stamps compare with the ones SQLAlchemy binds: the time queries still work.
        assert db.scalar(select(STORIES.c.id).where(STORIES.c.updated_at == NOW)) is not None
        assert db.scalar(select(STORIES.c.id).where(STORIES.c.scored_at < scored)) is None
        match = db.execute(select(MATCHES)).one()
        assert (match.target, match.story_id, match.matched_at) == ("slack:C0DESK", "a", NOW)
        assert json.loads(match.why)[0] == {"is": "impact", "value": 9, "min": 8, "ok": True}
        assert match.reason.startswith("impact 9 ≥ 8")
    database.close()


def test_a_naive_time_or_an_unknown_column_is_refused_by_name(database_url: str) -> None:
    database = Database(database_url)
    with database.engine.connect() as db:
        with pytest.raises(ValueError, match="naive datetime"):
            bulk.stamper(db)(datetime(2026, 12, 2))
        with pytest.raises(KeyError, match="colour"):
            bulk.insert(db, MATCHES, [{"colour": "red"}])
        assert db.scalar(text("SELECT count(*) FROM matches")) == 0
    database.close()


def test_insert_new_skips_keys_already_there_and_returns_only_the_new_ids(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What planning relies on: a dedupe key already stored plans no row, and each new row's id
    comes back by its key, across more than one statement's worth of rows."""
    monkeypatch.setattr(bulk, "NEW_ROWS", 2)  # three statements for five rows

    def row(key: str) -> dict[str, object]:
        return {"dedupe_key": key, "transport": "slack", "target": "slack:C0DESK",
                "kind": "alert", "reason": "r", "status": "pending", "attempts": 0,
                "not_before": NOW, "created_at": NOW}

    database = Database(database_url)
    with database.engine.begin() as db:
        first = bulk.insert_new(db, DELIVERIES, [row("a"), row("b")], "dedupe_key")
        made = bulk.insert_new(db, DELIVERIES, [row(k) for k in "abcde"], "dedupe_key")
        stored = {key: id_ for key, id_ in db.execute(select(DELIVERIES.c.dedupe_key,
                                                              DELIVERIES.c.id))}
        assert set(first) == {"a", "b"} and set(made) == {"c", "d", "e"}
        assert {**first, **made} == stored  # each id is its own key's row
        assert db.scalar(select(DELIVERIES.c.not_before).where(
            DELIVERIES.c.dedupe_key == "e")) == NOW
        assert bulk.insert_new(db, DELIVERIES, [], "dedupe_key") == {}
    database.close()
