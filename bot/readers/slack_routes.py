"""Routes made in Slack: `/alerts subscribe` in a channel, `/alerts me subscribe` for a DM."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from bot.db.schema import SLACK_ROUTES
from bot.rules.targets import SlackRoute


def save(db: Connection, route: SlackRoute) -> None:
    """Create the route for its address, replacing any earlier one."""
    remove(db, route.address)
    db.execute(SLACK_ROUTES.insert().values(
        address=route.address, topics=list(route.topics), min_impact=route.min_impact,
        quiet_hours=route.quiet_hours, timezone=route.timezone,
        created_by=route.created_by, created_at=route.created_at,
    ))


def remove(db: Connection, address: str) -> bool:
    return bool(db.execute(delete(SLACK_ROUTES).where(SLACK_ROUTES.c.address == address))
                .rowcount)


_ALL = select(SLACK_ROUTES).order_by(SLACK_ROUTES.c.address)  # built once: ingest reads it


def listing(db: Connection, address: str | None = None) -> Sequence[SlackRoute]:
    query = _ALL if address is None else _ALL.where(SLACK_ROUTES.c.address == address)
    return [SlackRoute(r.address, tuple(r.topics), r.min_impact, r.created_by, r.created_at,
                       r.quiet_hours, r.timezone)
            for r in db.execute(query)]
