"""Migrations: an early database full of data upgrades to head, and head matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from bot import db as database
from bot.db.schema import metadata
from tests.conftest import new_pg_database
from tests.process import Alertbot

T = "2026-11-20 07:00:00"


def test_a_first_release_database_with_data_upgrades_to_head(bare_database_url: str) -> None:
    database_url = bare_database_url
    database.upgrade(database_url, "0001")
    engine = database.create(database_url)  # foreign keys enforced, as the service runs
    with engine.begin() as db:
        db.execute(text(
            "INSERT INTO stories (id, version, scored_at, impact, corroboration, qualifies, "
            "title, url, payload, updated_at) VALUES ('s1', 1, :t, 9, 3, true, 'Title', "
            "'https://desk.example/s1', '{}', :t)"), {"t": T})
        db.execute(text(
            "INSERT INTO deliveries (id, dedupe_key, transport, target, kind, reason, status, "
            "attempts, not_before, created_at) VALUES (1, 'alert:slack:C1:s1', 'slack', "
            "'slack:C1', 'alert', 'why', 'sent', 1, :t, :t)"), {"t": T})
        db.execute(text(
            "INSERT INTO matches (target, story_id, version, reason, matched_at, delivery_id) "
            "VALUES ('slack:C1', 's1', 1, 'why', :t, 1)"), {"t": T})
        db.execute(text(
            "INSERT INTO subscribers (email, mode, timezone, topics, digest_hour, created_at) "
            "VALUES ('ed@desk.example', 'daily', 'UTC', '[]', '07:00', :t)"), {"t": T})
    engine.dispose()

    database.upgrade(database_url)

    engine = database.create(database_url)
    with engine.connect() as db:
        assert db.scalar(text("SELECT version_num FROM alembic_version")) == database.HEAD
        assert db.execute(text("SELECT m.story_id, d.status FROM matches m JOIN deliveries d "
                               "ON d.id = m.delivery_id")).all() == [("s1", "sent")]
        # A stored action item counts as one from when it arrived, for the first digest.
        assert db.scalar(text("SELECT qualified_at IS NOT NULL FROM stories")) in (1, True)
        # ... and is numbered for the digests that follow the storing order: the next is 2.
        assert db.scalar(text("SELECT qualified_seq FROM stories")) == 1
        assert db.scalar(text("SELECT value FROM counters WHERE name = 'qualified'")) == 1
        assert db.scalar(text("SELECT count(*) FROM subscribers")) == 1
    engine.dispose()


def test_stored_action_items_are_numbered_in_arrival_order_and_readers_keep_their_window(
    bare_database_url: str,
) -> None:
    """0008 numbers what 0006's clock-based windows knew, so no digest repeats or skips."""
    database.upgrade(bare_database_url, "0007")
    engine = database.create(bare_database_url)
    with engine.begin() as db:
        for story_id, arrived in (("c", "07:30"), ("a", "05:00"), ("b", "06:00"), ("n", None)):
            db.execute(text(
                "INSERT INTO stories (id, scored_at, impact, corroboration, qualifies, title, "
                "url, payload, updated_at, qualified_at) VALUES (:id, :t, 9, 3, :q, 'T', :url, "
                "'{}', :t, :at)"), {"id": story_id, "url": story_id, "t": T,
                                     "q": arrived is not None,
                                     "at": arrived and f"2026-11-20 {arrived}:00"})
        db.execute(text(
            "INSERT INTO subscribers (email, mode, timezone, topics, digest_hour, created_at, "
            "digest_since) VALUES ('ed@desk.example', 'daily', 'UTC', '[]', '07:00', :t, :t)"),
            {"t": T})  # their last digest covered up to 07:00: a and b, not c
    engine.dispose()
    database.upgrade(bare_database_url)
    engine = database.create(bare_database_url)
    with engine.connect() as db:
        numbers = dict(db.execute(text("SELECT id, qualified_seq FROM stories")).all())
        assert numbers == {"a": 1, "b": 2, "c": 3, "n": None}
        assert db.scalar(text("SELECT digest_seq FROM subscribers")) == 2
        assert db.scalar(text("SELECT value FROM counters")) == 3
    engine.dispose()


def test_head_names_the_newest_migration() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(database.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == database.HEAD


def test_the_migrated_schema_is_the_one_the_models_describe(database_url: str) -> None:
    database.upgrade(database_url)
    engine = database.create(database_url)
    with engine.connect() as db:
        context = MigrationContext.configure(db)
        differences = [d for d in compare_metadata(context, metadata)
                       if not _search_machinery(d)]
    engine.dispose()
    assert differences == []


def _search_machinery(difference: object) -> bool:
    """Migration 0004's full-text search objects live outside the models on purpose."""
    return "fts" in repr(difference) or "ix_stories_search" in repr(difference)


@pytest.mark.postgres
def test_on_postgresql_a_schema_behind_this_release_stops_commands_until_db_upgrade(
    tmp_path: Path, postgres_server: str,
) -> None:
    """Replicas never migrate PostgreSQL themselves (they would race): they say what to run,
    and a schema newer than they know (a rolling upgrade's first step) does not stop them."""
    url = new_pg_database(postgres_server)
    bot = Alertbot.make(tmp_path, "", DATABASE_URL=url)
    empty = bot.cli("deliveries", "list")
    assert empty.returncode == 1
    assert "the database has no alertbot tables yet: run `alertbot db upgrade` first" in (
        empty.stderr)
    database.upgrade(url, "0006")
    older = bot.cli("check")
    assert older.returncode == 1
    assert f"schema is at revision 0006; this release needs {database.HEAD}" in older.stderr
    assert bot.cli("db", "upgrade").returncode == 0
    assert bot.cli("deliveries", "list").stdout.strip() == "(none)"
    engine = database.create(url)
    with engine.begin() as db:  # as if a later release had migrated it
        db.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    assert bot.cli("deliveries", "list").returncode == 0
