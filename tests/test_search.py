"""`/story` look-ups in the archive, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.db import Database
from bot.pipeline import Pipeline
from bot.stories import search
from bot.stories.parsing import parse_batch
from tests.conftest import make_config, story

STORIES = [
    story(id="hgv", title="Hypersonic glide vehicle test ends early over the Pacific",
          key_facts=["Telemetry was lost after booster separation"]),
    story(id="budget", title="Hypersonic budget line trimmed"),
    story(id="radar", title="Pacific test range gets new radar",
          sources=[{"outlet": "SpaceNews", "title": "Range upgrade announced"},
                   {"outlet": "Reuters", "title": "Radar contract"}]),
    story(id="long-url", url="https://desk.example/" + "x" * 5000, title="A very long link"),
    *[story(id=f"filler-{n}", title=f"Satellite operator reports results {n}")
      for n in range(50)],
]


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> Database:
    database = Database(database_url)
    pipeline = Pipeline(database, make_config(tmp_path, database_url))
    report = await pipeline.ingest(parse_batch(json.dumps(STORIES)), "test", datetime.now(UTC))
    assert len(report.accepted) == len(STORIES)
    return database


def ids(db: Database, query: str) -> list[str]:
    with db.engine.connect() as connection:
        return [s.id for s in search.find(connection, query)]


def test_stories_with_every_word_come_first(db: Database) -> None:
    assert ids(db, "hypersonic glide pacific") == ["hgv"]
    assert set(ids(db, "hypersonic")) == {"hgv", "budget"}


def test_without_a_story_having_every_word_any_word_will_do(db: Database) -> None:
    found = ids(db, "glide radar")
    assert set(found) == {"hgv", "radar"}


def test_a_title_match_outranks_a_match_in_the_body(db: Database) -> None:
    assert ids(db, "radar")[0] == "radar"  # title word; "Radar contract" is only a headline


def test_takeaways_facts_and_headlines_are_searched_with_stemming(db: Database) -> None:
    assert ids(db, "telemetry") == ["hgv"]
    assert ids(db, "upgrades") == ["radar"]  # a source headline, stemmed


def test_id_and_url_are_exact_even_for_a_very_long_url(db: Database) -> None:
    assert ids(db, "budget") == ["budget"]  # the id wins over a word search
    assert ids(db, "https://desk.example/" + "x" * 5000) == ["long-url"]


@pytest.mark.parametrize("query", ['"', "AND OR NOT", "NEAR(a b", "title:x*", "a & b | !c",
                                   "'; DROP TABLE stories; --", "ünïcödé ✓"])
def test_search_syntax_typed_in_slack_is_just_words(db: Database, query: str) -> None:
    ids(db, query)  # never raises
    assert ids(db, "hypersonic")[:1] in (["hgv"], ["budget"])


async def test_stories_stored_later_and_replaced_versions_are_searched_as_they_now_read(
    db: Database, database_url: str, tmp_path: Path,
) -> None:
    """SQLite indexes each chunk's new stories in one statement (migration 0014) and keeps
    replaced versions in step by trigger; a second ingest must find both, and not the words a
    replaced version no longer has."""
    pipeline = Pipeline(db, make_config(tmp_path, database_url))
    later = [story(id="scram", title="Scramjet engine fired for ten minutes"),
             story(id="budget", version=2, title="Hypersonic budget restored for scramjet work")]
    report = await pipeline.ingest(parse_batch(json.dumps(later)), "test", datetime.now(UTC))
    assert sorted(report.accepted) == ["budget", "scram"]
    assert set(ids(db, "scramjet")) == {"scram", "budget"}
    assert ids(db, "trimmed") == []  # the replaced title's word
    assert ids(db, "telemetry") == ["hgv"]  # the first ingest's index is intact
