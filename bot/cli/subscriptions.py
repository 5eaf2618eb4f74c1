"""What subscribers receive: digest send, preview, test (the subscribers themselves:
`subscribers.py`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from email.message import EmailMessage

    from bot.messages import Entry, Renderer
    from bot.settings import Config

# Each command imports the parts of alertbot it needs when it runs (see bot/cli/common.py).

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
