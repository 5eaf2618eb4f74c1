"""Tables. Portable SQL only: the same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


class Base(DeclarativeBase):
    pass


class StoryRow(Base):
    """The current (newest) version of each story."""

    __tablename__ = "stories"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    impact: Mapped[float] = mapped_column(Float)
    corroboration: Mapped[int] = mapped_column(Integer)
    qualifies: Mapped[bool] = mapped_column(Boolean, index=True)
    flag: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text, index=True)  # /story by URL
    # Takeaways, key facts and source headlines, for full-text search beside the title.
    search_text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the validated story as JSON text
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the story became an action item here (its first qualifying, fresh version arrived);
    # None while it is not one. Daily digests cover action items by this time, not scored_at,
    # so a story scored before a digest but received after it is in the next one.
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Its number in the order stories became action items (the `qualified` counter), given in
    # the transaction that stored it; None while it is not one. A daily digest covers the
    # numbers above the reader's last one, so whatever was stored before a digest is planned is
    # in it, and nothing is in two (docs/decisions.md, "Daily digest windows").
    qualified_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)


class StoryVersionRow(Base):
    """Every version ever stored, for score history and for editing posted messages."""

    __tablename__ = "story_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    impact: Mapped[float] = mapped_column(Float)
    corroboration: Mapped[int] = mapped_column(Integer)
    qualifies: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RejectionRow(Base):
    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    origin: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    story_id: Mapped[str | None] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class DeliveryRow(Base):
    """The outbox: one row per story-or-digest × target; also the record of what was sent."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    transport: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(320), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # alert | digest | test
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # pending|sending|sent|failed|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "host:pid" of the process that claimed it last: for a sent row, the one that sent it.
    claimed_by: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(Text)  # Slack ts or email Message-ID
    # An `update` row edits the message its parent posted; `details` holds the change.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class PacingRow(Base):
    """Until when a target must not get another message (Slack pacing, a Retry-After).

    In the database rather than in memory so that every replica keeps one channel's pace.
    """

    __tablename__ = "pacing"

    target: Mapped[str] = mapped_column(String(320), primary_key=True)
    paced_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MatchRow(Base):
    """A story that qualified for a target: alerts go out once per (target, story)."""

    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("target", "story_id", name="uq_matches_target_story"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(320))
    story_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)


class SubscriberRow(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    mode: Mapped[str] = mapped_column(String(10))  # instant | daily | both
    timezone: Mapped[str] = mapped_column(String(64))
    topics: Mapped[list[str]] = mapped_column(JSON)
    digest_hour: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Daily digests: when the next one is due (None for instant-only subscribers); the highest
    # `stories.qualified_seq` the last one covered (None before the first: it looks back 24 h);
    # and when that one was planned, which the email names ("since …").
    next_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    digest_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digest_seq: Mapped[int | None] = mapped_column(BigInteger)


class CounterRow(Base):
    """Named counters. `qualified` numbers action items in the order they were stored: its
    row is updated in the storing transaction, so numbers are committed in order."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class SlackRouteRow(Base):
    """A route made in Slack with `/alerts subscribe` (a channel) or `/alerts me` (a DM)."""

    __tablename__ = "slack_routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(40), unique=True)  # channel or user ID
    topics: Mapped[list[str]] = mapped_column(JSON)
    min_impact: Mapped[float | None] = mapped_column(Float)
    quiet_hours: Mapped[str | None] = mapped_column(String(11))  # "22:00-07:00"
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Core tables, for the queries (typed as Table, which the ORM's `__table__` is not).
STORIES = Base.metadata.tables["stories"]
VERSIONS = Base.metadata.tables["story_versions"]
REJECTIONS = Base.metadata.tables["rejections"]
DELIVERIES = Base.metadata.tables["deliveries"]
MATCHES = Base.metadata.tables["matches"]
PACING = Base.metadata.tables["pacing"]
SUBSCRIBERS = Base.metadata.tables["subscribers"]
SLACK_ROUTES = Base.metadata.tables["slack_routes"]
COUNTERS = Base.metadata.tables["counters"]
