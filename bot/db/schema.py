"""Tables. Portable SQL only: the same schema runs on SQLite and PostgreSQL.

SQLAlchemy Core tables, not ORM classes: the code queries tables, and the ORM's import alone
cost every command-line call ~0.2 s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend stores."""

    impl = _DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

# The current (newest) version of each story.
STORIES = Table(
    "stories", metadata,
    Column("id", String(200), primary_key=True),
    Column("version", Integer),
    Column("scored_at", UTCDateTime, index=True, nullable=False),
    Column("impact", Float, nullable=False),
    Column("corroboration", Integer, nullable=False),
    Column("qualifies", Boolean, index=True, nullable=False),
    Column("flag", Text),
    Column("title", Text, nullable=False),
    Column("url", Text, index=True, nullable=False),  # /story by URL
    # Takeaways, key facts and source headlines, for full-text search beside the title.
    Column("search_text", Text),
    Column("payload", Text, nullable=False),  # the validated story as JSON text
    Column("updated_at", UTCDateTime, nullable=False),
    # When the story became an action item here (its first qualifying, fresh version arrived);
    # None while it is not one. Daily digests cover action items by this time, not scored_at,
    # so a story scored before a digest but received after it is in the next one.
    Column("qualified_at", UTCDateTime, index=True),
    # Its number in the order stories became action items (the `qualified` counter), given in
    # the transaction that stored it; None while it is not one. A daily digest covers the
    # numbers above the reader's last one, so whatever was stored before a digest is planned is
    # in it, and nothing is in two (docs/decisions.md, "Daily digest windows").
    Column("qualified_seq", BigInteger, index=True),
)

# Every version ever stored, for score history and for editing posted messages.
VERSIONS = Table(
    "story_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("story_id", String(200), index=True, nullable=False),
    Column("version", Integer),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("impact", Float, nullable=False),
    Column("corroboration", Integer, nullable=False),
    Column("qualifies", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

REJECTIONS = Table(
    "rejections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, index=True, nullable=False),
    Column("origin", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("story_id", String(200)),
    Column("field", Text, nullable=False),
    Column("reason", Text, nullable=False),
)

# The outbox: one row per message × target; also the record of what was sent.
DELIVERIES = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(400), unique=True, nullable=False),
    Column("transport", String(20), nullable=False),
    Column("target", String(320), index=True, nullable=False),
    Column("kind", String(20), nullable=False),  # a module of bot/messages/kinds (alert, batch…)
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),  # pending|sending|sent|failed|dead|cancelled
    Column("attempts", Integer, default=0, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    # "host:pid" of the process that claimed it last: for a sent row, the one that sent it.
    Column("claimed_by", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    Column("remote_id", Text),  # Slack ts or email Message-ID
    # An `update` row edits the message its parent posted; `details` holds the change.
    Column("parent_id", Integer, ForeignKey("deliveries.id")),
    Column("details", JSON),
    Index("ix_deliveries_due", "status", "not_before"),
    # a target's last message, for its batch window (migration 0015)
    Index("ix_deliveries_target_created", "target", "created_at"),
)

# Until when a target must not get another message (Slack pacing, a Retry-After).  In the
# database rather than in memory so that every replica keeps one channel's pace.
PACING = Table(
    "pacing", metadata,
    Column("target", String(320), primary_key=True),
    Column("paced_until", UTCDateTime, index=True, nullable=False),
)

# A story that qualified for a target: alerts go out once per (target, story).
MATCHES = Table(
    "matches", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(320), nullable=False),
    Column("story_id", String(200), index=True, nullable=False),
    Column("version", Integer),
    Column("reason", Text, nullable=False),  # the operator's plain form, for logs and the CLI
    Column("why", Text),  # the same as clause data (JSON) for "Why:"; NULL before 0010
    Column("matched_at", UTCDateTime, nullable=False),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), index=True),
    UniqueConstraint("target", "story_id", name="uq_matches_target_story"),
)

SUBSCRIBERS = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), unique=True, nullable=False),
    Column("mode", String(10), nullable=False),  # instant | daily | both
    Column("timezone", String(64), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("digest_hour", String(5), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Daily digests: when the next one is due (None for instant-only subscribers); the highest
    # `stories.qualified_seq` the last one covered (None before the first: it looks back 24 h);
    # and when that one was planned, which the email names ("since …").
    Column("next_digest_at", UTCDateTime, index=True),
    Column("digest_since", UTCDateTime),
    Column("digest_seq", BigInteger),
    # Set by the reader on the preference center: a minimum impact on top of the desk's (None:
    # the desk's alone) and a pause (no email before that local date; None: not paused).
    Column("min_impact", Float),
    Column("paused_until", Date),
)

# Named counters. `qualified` numbers action items in the order they were stored: its row is
# updated in the storing transaction, so numbers are committed in order.
COUNTERS = Table(
    "counters", metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# A route made in Slack with `/alerts subscribe` (a channel) or `/alerts me` (a DM).
SLACK_ROUTES = Table(
    "slack_routes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(40), unique=True, nullable=False),  # channel or user ID
    Column("topics", JSON, nullable=False),
    Column("min_impact", Float),
    Column("quiet_hours", String(11)),  # "22:00-07:00"
    Column("timezone", String(64), default="UTC", nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# An action item's state, one row per story acted on, desk-wide (a story posted to three
# channels has one state). No row: open, nobody. `version` counts changes, for compare-and-set.
ACTION_ITEMS = Table(
    "action_items", metadata,
    Column("story_id", String(200), primary_key=True),
    Column("state", String(20), index=True, nullable=False),
    Column("by", String(40)),
    Column("by_name", String(80)),  # `by`'s name as Slack sent it, for email (0013)
    Column("at", UTCDateTime),
    Column("note", Text),
    Column("reason", String(20)),
    Column("snoozed_until", UTCDateTime),
    Column("version", Integer, nullable=False),
)

# Every press, applied or refused: who did what to which story, when, and why. `press_key`
# (Slack's action_ts, user, action, story) is unique, so a press delivered twice is recorded once.
ACTION_EVENTS = Table(
    "action_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("press_key", String(300), unique=True, nullable=False),
    Column("story_id", String(200), index=True, nullable=False),
    Column("user", String(40), nullable=False),
    Column("name", String(80)),  # the presser's name as Slack sent it (0013)
    Column("action", String(20), nullable=False),
    Column("at", UTCDateTime, index=True, nullable=False),
    Column("note", Text),
    Column("reason", String(20)),
    Column("outcome", String(40), nullable=False),  # "claimed", or why not: "already_claimed"
    Column("applied", Boolean, nullable=False),
)
