"""Subscribers and what they receive: subscribers, digest send, preview, test."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from bot.cli.common import (
    Failure,
    command,
    ensure_schema,
    load_or_fail,
    main,
    run_loop,
    transaction,
    with_service,
)
from bot.cli.output import emit

if TYPE_CHECKING:
    from email.message import EmailMessage

    from bot.messages import Entry, Renderer
    from bot.readers.subscribers import Subscriber
    from bot.settings import Config

# Each command imports the parts of alertbot it needs when it runs (see bot/cli/common.py).

# -- subscribers ---------------------------------------------------------------------------


@main.group("subscribers")
def subscribers_group() -> None:
    """Email subscribers."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--mode", default="daily", type=click.Choice(["instant", "daily", "both"]))
@click.option("--tz", "timezone", default="UTC", help="IANA time zone, e.g. Europe/London.")
@click.option("--topics", default="", help="Comma-separated; empty means all topics.")
@click.option("--digest-hour", default=None, help="HH:MM local (default from the config).")
@command
def subscribers_add(email: str, mode: str, timezone: str, topics: str,
                    digest_hour: str | None) -> None:
    """Add (or update) an email subscriber."""
    from bot.readers import subscribers

    config = load_or_fail()
    try:
        hour = config.desk.email.digest_hour if digest_hour is None else digest_hour
        subscriber = subscribers.validate(email, mode, timezone, topics.split(","), hour)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    with transaction(config) as db:
        if _same(subscribers.find(db, subscriber.email), subscriber):
            # A second `make run` lands here: say so, and leave their digest time alone.
            click.echo(f"{subscriber.email} is already subscribed ({subscriber.mode}, "
                       f"{subscriber.timezone}): nothing to change")
            return
        new = subscribers.add(db, subscriber, datetime.now(UTC))
    click.echo(f"{'subscribed' if new else 'updated'} {subscriber.email} "
               f"({subscriber.mode}, {subscriber.timezone})")


def _same(stored: Subscriber | None, wanted: Subscriber) -> bool:
    """Whether `wanted` is what is stored already, in every field `subscribers add` sets."""
    return stored is not None and (
        (stored.mode, stored.timezone, stored.topics, stored.digest_hour)
        == (wanted.mode, wanted.timezone, wanted.topics, wanted.digest_hour))


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
             "digest_hour": s.digest_hour, "next_digest": _local(s.next_digest_at, s.timezone)}
            for s in found]
    emit(rows, as_json, ("email", "mode", "tz", "topics", "digest_hour", "next_digest"))


def _local(moment: datetime | None, zone: str) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@command
def subscribers_import(file: str) -> None:
    """Add or update subscribers from a CSV file (header email,mode,tz,topics,digest_hour).

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
        added = sum(subscribers.add(db, subscriber, now) for subscriber in good)
    for row in bad:
        click.echo(f"{file}:{row.line}: {row.reason}", err=True)
    click.echo(f"{len(good)} imported ({added} new, {len(good) - added} updated), "
               f"{len(bad)} rejected")
    sys.exit(1 if bad else 0)


# -- digests, previews, tests --------------------------------------------------------------


@main.group()
def digest() -> None:
    """Daily digests."""


@digest.command("send")
@click.option("--now", "force", is_flag=True,
              help="Every daily subscriber's digest for today, whatever their hour.")
@command
def digest_send(force: bool) -> None:
    """Plan and send the daily digests that are due (each subscriber gets one per local date)."""
    config = load_or_fail()
    ensure_schema(config)
    summary = run_loop(with_service(config, lambda s: s.send_digests(force)))
    click.echo(", ".join(f"{value} {key}" for key, value in summary.items()))


@main.command()
@click.option("--story", "story_id", help="A story's alert.")
@click.option("--digest", "address", help="A subscriber's daily digest, as it would go now.")
@click.option("--format", "fmt", type=click.Choice(["slack", "html", "text"]),
              help="Default: slack for --story, html for --digest.")
@command
def preview(story_id: str | None, address: str | None, fmt: str | None) -> None:
    """Print exactly what would be sent, without sending or recording anything."""
    from bot.messages import Renderer
    from bot.readers.subscribers import secret_key

    if (story_id is None) == (address is None):
        raise Failure("give --story ID or --digest EMAIL (one of them)")
    config = load_or_fail()
    renderer = Renderer(config, secret_key(config.settings))
    now = datetime.now(UTC)
    with transaction(config) as db:
        if story_id is not None:
            fmt = fmt or "slack"
            message = _story_preview(db, config, renderer, story_id, fmt, now)
        else:
            fmt = fmt or "html"
            message = _digest_preview(db, config, renderer, address or "", fmt, now)
    _show(message, fmt)


def _show(message: Any, fmt: str) -> None:
    """An email's subject on stderr and the chosen part on stdout; Slack's JSON on stdout."""
    from email.message import EmailMessage

    from bot.transports import Outgoing

    if isinstance(message, Outgoing):
        message = message.parsed()
    if isinstance(message, EmailMessage):
        click.echo(f"Subject: {message['Subject']}", err=True)
        part = message.get_body(("html",) if fmt == "html" else ("plain",))
        assert part is not None
        click.echo(part.get_content(), nl=False)
    else:
        click.echo(json.dumps(message[0][1], indent=2, ensure_ascii=False))


def _story_preview(db: Any, config: Config, renderer: Renderer, story_id: str, fmt: str,
                   now: datetime) -> Any:
    from bot import outbox
    from bot.messages import Load

    items = outbox.story_items(db, story_id)
    if not items:
        raise Failure(f"no story with id {story_id!r}; see `alertbot stories rejected`")
    transport = "slack" if fmt == "slack" else "email"
    target = "slack:C0PREVIEW" if fmt == "slack" else "email:reader@example.com"
    return renderer.render("alert", transport, target, None,
                           Load([_with_reason(items[0], config)]), now)


def _with_reason(item: Any, config: Config) -> Entry:
    """A stored story as an alert's entry, with the rule's verdict as its reason."""
    from bot.messages import Entry
    from bot.rules.gate import corroborate, gate, global_thresholds
    from bot.rules.reasons import Clause, plain, to_json
    from bot.stories.model import Story

    story = Story.model_validate_json(item.payload)
    verdict = gate(story.impact, corroborate(story).count, global_thresholds(config.desk.rules))
    why = (*verdict.why, Clause("preview", {}))
    return Entry(item.story_id, plain(why), item.payload, to_json(why))


def _digest_preview(db: Any, config: Config, renderer: Renderer, address: str, fmt: str,
                    now: datetime) -> EmailMessage:
    from bot import outbox
    from bot.messages import Load
    from bot.messages.kinds.base import with_owners
    from bot.outbox import daily as digests
    from bot.readers import subscribers
    from bot.transports import Outgoing

    if fmt == "slack":
        raise Failure("a daily digest is an email: use --format html or text")
    subscriber = subscribers.find(db, address)
    if subscriber is None:
        raise Failure(f"{address} is not subscribed; see `alertbot subscribers list`")
    if subscriber.mode not in subscribers.DAILY:
        # A what-if, read only: their digest as if they had one, so preview works for anyone.
        click.echo(f"{subscriber.email} gets instant emails only (mode {subscriber.mode}), "
                   "no daily digest; this is what a daily digest would hold for them now.",
                   err=True)
        subscriber = dataclasses.replace(subscriber, mode="daily")
    found = digests.contents(db, subscriber, config.desk, now)
    if not found.stories and not config.desk.email.send_empty_digest:
        raise Failure(f"{subscriber.email} would get no digest now: no action items since "
                      f"{found.since:%Y-%m-%d %H:%M} UTC (send_empty_digest is off)")
    details = found.details()
    # With each item's owner, as the daily kind loads it: the preview is what would be sent.
    load = with_owners(db, Load(outbox.stories_of(db, details)))
    message: EmailMessage | Outgoing = renderer.render(
        "daily", "email", f"email:{subscriber.email}", details, load, now)
    return message.parsed() if isinstance(message, Outgoing) else message


@main.group("test")
def test_group() -> None:
    """Send one clearly marked test message through the real transport."""


@test_group.command("slack")
@click.argument("channel")
@command
def test_slack(channel: str) -> None:
    """Post a test message to CHANNEL (an ID such as C0123ABC, or a user ID for a DM)."""
    _send_test("slack", channel)


@test_group.command("email")
@click.argument("address")
@command
def test_email(address: str) -> None:
    """Email a test message to ADDRESS."""
    from bot.readers import subscribers

    try:
        subscribers.validate(address, "instant", "UTC", (), "07:00")
    except ValueError as exc:
        raise Failure(str(exc)) from None
    _send_test("email", address.strip().lower())


def _send_test(transport: str, address: str) -> None:
    config = load_or_fail()
    ensure_schema(config)
    row = run_loop(with_service(config, lambda s: s.send_test(transport, address)))
    if row.status == "sent":
        click.echo(f"sent a test message to {address} via {transport} (delivery {row.id}"
                   f"{', id ' + row.remote_id if row.remote_id else ''})")
        return
    raise Failure(f"the test message to {address} was not sent: {row.last_error or row.status}"
                  f" (delivery {row.id})")
