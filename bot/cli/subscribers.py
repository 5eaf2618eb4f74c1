"""`alertbot subscribers add | remove | list | import`: email subscribers, as stored."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from bot.cli.common import Failure, command, load_or_fail, main, transaction
from bot.cli.output import emit

if TYPE_CHECKING:
    from bot.readers.subscribers import Subscriber

# Each command imports the parts of alertbot it needs when it runs (see bot/cli/common.py).


@main.group("subscribers")
def subscribers_group() -> None:
    """Email subscribers."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--mode", default="daily", type=click.Choice(["instant", "daily", "both"]))
@click.option("--tz", "timezone", default="UTC", help="IANA time zone, e.g. Europe/London.")
@click.option("--topics", default="", help="Comma-separated; empty means all topics.")
@click.option("--digest-hour", default=None, help="HH:MM local (default from the config).")
@click.option("--min-impact", default=None,
              help="Only stories of at least this impact (1-10), on top of the desk's rule; "
                   "'none' clears it. Omitted: left as the reader set it.")
@click.option("--paused-until", default=None,
              help="No email before this local date (YYYY-MM-DD); 'none' clears it. "
                   "Omitted: left as the reader set it.")
@command
def subscribers_add(email: str, mode: str, timezone: str, topics: str,
                    digest_hour: str | None, min_impact: str | None,
                    paused_until: str | None) -> None:
    """Add (or update) an email subscriber."""
    from bot.readers import subscribers

    config = load_or_fail()
    try:
        hour = config.desk.email.digest_hour if digest_hour is None else digest_hour
        subscriber, keep = subscribers.with_own(
            subscribers.validate(email, mode, timezone, topics.split(","), hour),
            min_impact, paused_until)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    with transaction(config) as db:
        if _same(subscribers.find(db, subscriber.email), subscriber, keep):
            # A second `make run` lands here: say so, and leave their digest time alone.
            click.echo(f"{subscriber.email} is already subscribed ({subscriber.mode}, "
                       f"{subscriber.timezone}): nothing to change")
            return
        new = subscribers.add(db, subscriber, datetime.now(UTC), keep)
        stored = subscribers.find(db, subscriber.email)
    assert stored is not None
    click.echo(f"{'subscribed' if new else 'updated'} {subscriber.email} "
               f"({', '.join(_described(stored))})")


def _same(stored: Subscriber | None, wanted: Subscriber, keep: frozenset[str]) -> bool:
    """Whether `wanted` is what is stored already, in every field `subscribers add` sets
    (the reader's own settings in `keep` are not set)."""
    from bot.readers.subscribers import OWN

    def fields(s: Subscriber) -> tuple[object, ...]:
        return (s.mode, s.timezone, s.topics, s.digest_hour,
                *(getattr(s, name) for name in OWN if name not in keep))

    return stored is not None and fields(stored) == fields(wanted)


def _described(s: Subscriber) -> list[str]:
    """mode and zone, then the reader's own settings when set."""
    said = [s.mode, s.timezone]
    if s.min_impact is not None:
        said.append(f"min impact {s.min_impact:g}")
    if s.paused_until is not None:
        said.append(f"paused until {s.paused_until.isoformat()}")
    return said


@subscribers_group.command("remove")
@click.argument("email")
@command
def subscribers_remove(email: str) -> None:
    """Remove an email subscriber."""
    from bot.readers import subscribers

    with transaction(load_or_fail()) as db:
        removed = subscribers.remove(db, email)
    if not removed:
        raise Failure(f"{email} is not subscribed")
    click.echo(f"removed {email}")


@subscribers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def subscribers_list(as_json: bool) -> None:
    """List email subscribers, each with their next digest time in their own zone."""
    from bot.readers import subscribers

    with transaction(load_or_fail()) as db:
        found = subscribers.listing(db)
    rows = [{"email": s.email, "mode": s.mode, "tz": s.timezone, "topics": ",".join(s.topics),
             "digest_hour": s.digest_hour, "next_digest": _local(s.next_digest_at, s.timezone),
             # A number in JSON; "9" rather than "9.0" in the table.
             "min_impact": (s.min_impact if as_json or s.min_impact is None
                            else f"{s.min_impact:g}"),
             "paused_until": s.paused_until.isoformat() if s.paused_until else None}
            for s in found]
    emit(rows, as_json, ("email", "mode", "tz", "topics", "digest_hour", "next_digest",
                         "min_impact", "paused_until"))


def _local(moment: datetime | None, zone: str) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@command
def subscribers_import(file: str) -> None:
    """Add or update subscribers from a CSV file (header email,mode,tz,topics,digest_hour,
    and optionally min_impact,paused_until: empty keeps what the reader set, `none` clears it).

    Bad rows are reported by line and the rest imported; exit 1 when any row was bad.
    """
    from bot.readers import subscribers

    config = load_or_fail()
    raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Failure(f"{file} is not UTF-8 text; save the CSV as UTF-8") from None
    good, bad = subscribers.read_csv(text, config.desk.email.digest_hour)
    now = datetime.now(UTC)
    with transaction(config) as db:
        added = sum(subscribers.add(db, row.subscriber, now, row.keep) for row in good)
    for row in bad:
        click.echo(f"{file}:{row.line}: {row.reason}", err=True)
    click.echo(f"{len(good)} imported ({added} new, {len(good) - added} updated), "
               f"{len(bad)} rejected")
    sys.exit(1 if bad else 0)
