"""The desk's verdicts for the scorers: `alertbot feedback`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from bot.cli.common import Failure, command, load_or_fail, main, transaction
from bot.cli.output import emit, emit_csv

COLUMNS = ("story_id", "impact", "sources", "topics", "verdict", "reason", "note", "by", "at")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A date or date-time as ISO 8601 writes it; UTC unless it says otherwise."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-12-01 or "
                                 "2026-12-01T09:00") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@main.command()
@click.option("--since", callback=_since, metavar="DATE",
              help="Only verdicts from DATE on (ISO 8601, UTC unless it says otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@command
def feedback(since: datetime | None, as_json: bool, as_csv: bool) -> None:
    """Export the desk's verdicts (dismissed with a reason, done) with each story's impact,
    sources and topics, for the scorers."""
    from bot.stories import actions

    if as_json and as_csv:
        raise Failure("give --json or --csv, not both")
    with transaction(load_or_fail()) as db:
        rows = actions.verdicts(db, since)
    if as_csv:
        emit_csv(rows, COLUMNS)
        return
    if not as_json:
        rows = [{**row, "topics": ", ".join(row["topics"])} for row in rows]
    emit(rows, as_json, COLUMNS)
