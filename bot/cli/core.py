"""The service and its record: run, check, ingest, story, stories, deliveries, config, db."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.common import (
    Failure,
    command,
    database_url,
    ensure_schema,
    load_or_fail,
    main,
    progress,
    run_loop,
    transaction,
    with_service,
)
from bot.cli.output import emit, masked_url, plain

if TYPE_CHECKING:
    from bot.db import Database
    from bot.settings import Config
    from bot.stories.model import Story
    from bot.stories.parsing import Batch

# Each command imports the parts of alertbot it needs when it runs (see bot/cli/common.py).


@main.command()
@command
def run() -> None:
    """Run the service: scheduler, delivery workers and HTTP server."""
    from bot.service import Service

    config = load_or_fail()
    ensure_schema(config)
    service = Service(config)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(service.run())


@main.command("deliver-child", hidden=True)
@click.argument("number", type=int)
@command
def deliver_child(number: int) -> None:
    """Deliver only: one of `alertbot run`'s delivery processes (`[delivery] processes`)."""
    from bot.service import STOP_GRACE
    from bot.service.children import serve_child

    config = load_or_fail()
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve_child(config, number, STOP_GRACE))


@main.command()
@command
def check() -> None:
    """One pass: poll sources, evaluate, deliver everything due, then exit."""
    config = load_or_fail()
    ensure_schema(config)
    summary = run_loop(with_service(config, lambda s: s.check()))
    click.echo(", ".join(f"{value} {key}" for key, value in summary.items()))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@command
def ingest(files: tuple[str, ...]) -> None:
    """Store and evaluate stories from FILES (- for stdin). Exit 1 if any story is rejected."""
    from bot.db import Database

    config = load_or_fail()
    batches = _parse_all(files)
    ensure_schema(config)
    db = Database(database_url(config))
    try:
        stored, rejected = run_loop(_ingest_all(db, config, batches))
    finally:
        db.close()
    click.echo(f"{stored} stored, {rejected} rejected")
    sys.exit(1 if rejected else 0)


def _parse_all(files: tuple[str, ...]) -> list[tuple[str, Batch]]:
    """Every file parsed before anything is stored; unusable input exits 2, naming the file."""
    from bot.stories.parsing import UnusableInput, parse_batch

    batches = []
    for name in files:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        try:
            batches.append((name, parse_batch(data)))
        except UnusableInput as exc:
            click.echo(f"alertbot: {name}: {exc}", err=True)
            sys.exit(2)
    return batches


async def _ingest_all(db: Database, config: Config,
                      batches: list[tuple[str, Batch]]) -> tuple[int, int]:
    """Store and plan each batch (`run` or `check` delivers); name every rejection on stderr."""
    from bot.pipeline import Pipeline

    pipeline = Pipeline(db, config)
    stored = rejected = 0
    for name, batch in batches:
        with progress(len(batch.stories), f"ingesting {name}") as advance:
            report = await pipeline.ingest(batch, f"ingest:{name}", datetime.now(UTC), advance)
        stored += len(report.accepted)
        rejected += len(report.rejected)
        for item in report.rejected:
            who = f"story {item['id']!r}" if item["id"] else f"story #{item['position']}"
            click.echo(f"{name}: {who}: {item['field']}: {item['reason']}", err=True)
    return stored, rejected


@main.command()
@click.argument("story_id")
@command
def story(story_id: str) -> None:
    """Show a story's key facts, scores, sources and history."""
    from bot.stories import actions, archive

    with transaction(load_or_fail()) as db:
        found = archive.load(db, [story_id]).get(story_id)
        versions = archive.history(db, story_id)
        item, _ = actions.read(db, story_id)
        presses = [row for row in actions.history(db, story_id) if row.applied]
    if found is None:
        raise Failure(f"no story with id {story_id!r}; see `alertbot stories rejected` if it "
                      "was refused")
    click.echo(story_text(found, versions, item, presses))


def story_text(story: Story, versions: list[Any], item: Any = None,
               presses: list[Any] | None = None) -> str:
    """What `alertbot story` prints: templates/cli/story.txt (with its action item's state
    and the presses that changed it, oldest first)."""
    from bot.cli.wording import render
    from bot.rules.gate import corroborate

    return render("story.txt", story=story, corroboration=corroborate(story), versions=versions,
                  item=item, presses=presses or [])


@main.group()
def stories() -> None:
    """Stored stories."""


@stories.command("rejected")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def stories_rejected(as_json: bool) -> None:
    """List recorded rejections: when, source, id or position, field, reason."""
    from bot.stories import archive

    with transaction(load_or_fail()) as db:
        rows = [dict(r._mapping) for r in archive.rejections(db)]
    emit(rows, as_json, ("received_at", "origin", "story_id", "position", "field", "reason"))


F = Callable[..., Any]
STATUSES = ("pending", "sending", "sent", "failed", "dead", "cancelled")


def listing_options(func: F) -> F:
    """--status and --json, on both `deliveries` and `deliveries list`: the README's
    `alertbot deliveries [list] [--status S] [--json]` is the same listing either way."""
    func = click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")(func)
    return click.option("--status", type=click.Choice(STATUSES),
                        help="Only deliveries in this status.")(func)


@main.group(invoke_without_command=True)
@listing_options
@click.pass_context
def deliveries(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """The outbox: what was sent to whom, when, why, and the last error.

    With no command, lists deliveries as `deliveries list` does.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(deliveries_list, status=status, as_json=as_json)
    elif ctx.invoked_subcommand != "list" and (status or as_json):
        raise click.UsageError(f"--status and --json list deliveries; they do not go with "
                               f"`deliveries {ctx.invoked_subcommand}`")


@deliveries.command("list")
@listing_options
@click.pass_context
@command
def deliveries_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List deliveries, newest first."""
    from bot import outbox

    # `deliveries --json list` puts the options on the group: they count as well.
    given = ctx.parent.params if ctx.parent is not None else {}
    status = status or given.get("status")
    as_json = as_json or bool(given.get("as_json"))
    with transaction(load_or_fail()) as db:
        rows = [dict(r._mapping) for r in outbox.listing(db, status)]
    emit(rows, as_json, ("id", "status", "kind", "target", "attempts", "created_at", "sent_at",
                         "last_error", "reason"))


@deliveries.command("retry")
@click.argument("delivery_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Retry every dead delivery.")
@command
def deliveries_retry(delivery_id: int | None, dead: bool) -> None:
    """Queue a failed or dead delivery (or every dead one) to be sent again."""
    from bot import outbox

    if (delivery_id is None) == (not dead):
        raise Failure("give a delivery ID or --dead (not both)")
    with transaction(load_or_fail()) as db:
        count = outbox.retry(db, datetime.now(UTC), None if dead else delivery_id)
    if delivery_id is not None and count == 0:
        raise Failure(f"delivery {delivery_id} is not failed or dead; see `alertbot deliveries`")
    click.echo(f"{count} deliveries queued again")


@main.group()
def config() -> None:
    """Settings."""


@config.command("check")
@command
def config_check() -> None:
    """Print the effective settings, secrets masked; exit non-zero on a bad setting."""
    cfg = load_or_fail()
    settings = cfg.settings.model_dump(mode="json")
    # SecretStr dumps as '**********'; the database URL keeps its host but masks a password.
    settings["database_url"] = masked_url(database_url(cfg))
    # Python mode keeps durations as timedeltas, so `plain` can print "30s" as the TOML says
    # it; JSON mode would turn them into ISO 8601 ("PT30S").
    desk = cfg.desk.model_dump(mode="python")
    click.echo(json.dumps({"settings": settings, "config_file": str(cfg.config_file),
                           "desk": desk}, indent=2, default=plain))


@main.group()
def db() -> None:
    """Database."""


@db.command("upgrade")
@command
def db_upgrade() -> None:
    """Apply database migrations."""
    from bot import db as database

    database.upgrade(database_url(load_or_fail()))
    click.echo("database is up to date")
