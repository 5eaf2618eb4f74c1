"""Migrations: an early database full of data upgrades to head, and head matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from bot import db as database
from bot.db.schema import Base

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
        assert db.scalar(text("SELECT version_num FROM alembic_version")) == "0006"
        assert db.execute(text("SELECT m.story_id, d.status FROM matches m JOIN deliveries d "
                               "ON d.id = m.delivery_id")).all() == [("s1", "sent")]
        # A stored action item counts as one from when it arrived, for the first digest.
        assert db.scalar(text("SELECT qualified_at IS NOT NULL FROM stories")) in (1, True)
        assert db.scalar(text("SELECT count(*) FROM subscribers")) == 1
    engine.dispose()


def test_the_migrated_schema_is_the_one_the_models_describe(database_url: str) -> None:
    database.upgrade(database_url)
    engine = database.create(database_url)
    with engine.connect() as db:
        context = MigrationContext.configure(db)
        differences = [d for d in compare_metadata(context, Base.metadata)
                       if not _search_machinery(d)]
    engine.dispose()
    assert differences == []


def _search_machinery(difference: object) -> bool:
    """Migration 0004's full-text search objects live outside the models on purpose."""
    return "fts" in repr(difference) or "ix_stories_search" in repr(difference)
