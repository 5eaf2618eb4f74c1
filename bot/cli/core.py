"""The service and its record: run, check, ingest, story, stories, deliveries, config, db."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from bot import archive, outbox
from bot import db as database
from bot.cli.common import (
    Failure,
    command,
    database_url,
    emit,
    ensure_schema,
    load_or_fail,
    main,
    progress,
    run_loop,
    transaction,
    with_service,
)
from bot.db import Database
from bot.pipeline import Pipeline
from bot.rules import corroborate
from bot.service import Service
from bot.stories import Story, UnusableInput, parse_batch


@main.command()
@command
def run() -> None:
    """Run the service: scheduler, delivery workers and HTTP server."""
    config = load_or_fail()
    ensure_schema(config)
    service = Service(config)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(service.run())


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
    config = load_or_fail()
    batches = []
    for name in files:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        try:
            batches.append((name, parse_batch(data)))
        except UnusableInput as exc:
            click.echo(f"alertbot: {name}: {exc}", err=True)
            sys.exit(2)

    async def work(db: Database) -> tuple[int, int]:
        pipeline = Pipeline(db, config)  # stored and planned; `run` or `check` delivers
        stored = rejected = 0
        for name, batch in batches:
            with progress(len(batch.stories), f"ingesting {name}") as advance:
                report = await pipeline.ingest(batch, f"ingest:{name}", datetime.now(UTC),
                                               advance)
            stored += len(report.accepted)
            rejected += len(report.rejected)
            for item in report.rejected:
                who = f"story {item['id']!r}" if item["id"] else f"story #{item['position']}"
                click.echo(f"{name}: {who}: {item['field']}: {item['reason']}", err=True)
        return stored, rejected

    ensure_schema(config)
    db = Database(database_url(config))
    try:
        stored, rejected = run_loop(work(db))
    finally:
        db.close()
    click.echo(f"{stored} stored, {rejected} rejected")
    sys.exit(1 if rejected else 0)


@main.command()
@click.argument("story_id")
@command
def story(story_id: str) -> None:
    """Show a story's key facts, scores, sources and history."""
    with transaction(load_or_fail()) as db:
        found = archive.load(db, [story_id]).get(story_id)
        versions = archive.history(db, story_id)
    if found is None:
        raise Failure(f"no story with id {story_id!r}; see `alertbot stories rejected` if it "
                      "was refused")
    click.echo(story_text(found, versions))


def story_text(story: Story, versions: list[Any]) -> str:
    corroboration = corroborate(story)
    lines = [story.title, story.url, "",
             f"impact {story.impact:g}/10 · {story.sentiment.label} · verified by "
             f"{corroboration.count} independent sources ({', '.join(corroboration.outlets)})",
             f"scored {story.scored_at:%Y-%m-%d %H:%M} UTC"
             + (f" · version {story.version}" if story.version is not None else "")]
    if corroboration.flag:
        lines.append(f"FLAG: {corroboration.flag}")
    for heading, entries in (("Key facts", story.key_facts), ("Key takeaways",
                                                              story.key_takeaways),
                             ("Affected", story.affected)):
        if entries:
            lines += ["", heading + ":"] + [f"  {n}. {e}" for n, e in enumerate(entries, 1)]
    if story.sources:
        lines += ["", "Sources:"] + [
            f"  - {s.display}: {s.title or ''} {s.published_at or ''}".rstrip()
            for s in story.sources]
    if story.what_to_watch:
        lines += ["", "What to watch:", f"  {story.what_to_watch}"]
    if story.timeline:
        lines += ["", "Timeline:"] + [f"  {t.date}: {t.event}" for t in story.timeline]
    lines += ["", "History:"] + [
        f"  {v.received_at:%Y-%m-%d %H:%M} version {v.version if v.version is not None else '-'}"
        f": impact {v.impact:g}, {v.corroboration} sources, "
        f"{'action item' if v.qualifies else 'not an action item'}" for v in versions]
    return "\n".join(lines)


@main.group()
def stories() -> None:
    """Stored stories."""


@stories.command("rejected")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def stories_rejected(as_json: bool) -> None:
    """List recorded rejections: when, source, id or position, field, reason."""
    with transaction(load_or_fail()) as db:
        rows = [dict(r._mapping) for r in archive.rejections(db)]
    emit(rows, as_json, ("received_at", "origin", "story_id", "position", "field", "reason"))


@main.group(invoke_without_command=True)
@click.pass_context
def deliveries(ctx: click.Context) -> None:
    """The outbox: what was sent to whom, when, why, and the last error."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(deliveries_list)


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "dead"]))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def deliveries_list(status: str | None = None, as_json: bool = False) -> None:
    """List deliveries, newest first."""
    with transaction(load_or_fail()) as db:
        rows = [dict(r._mapping) for r in outbox.listing(db, status)]
    emit(rows, as_json, ("id", "status", "kind", "target", "attempts", "created_at", "sent_at",
                          "reason", "last_error"))


@deliveries.command("retry")
@click.argument("delivery_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Retry every dead delivery.")
@command
def deliveries_retry(delivery_id: int | None, dead: bool) -> None:
    """Queue a failed or dead delivery (or every dead one) to be sent again."""
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
    settings["database_url"] = make_url(database_url(cfg)).render_as_string(hide_password=True)
    click.echo(json.dumps({"settings": settings, "config_file": str(cfg.config_file),
                           "desk": cfg.desk.model_dump(mode="json")}, indent=2, default=str))


@main.group()
def db() -> None:
    """Database."""


@db.command("upgrade")
@command
def db_upgrade() -> None:
    """Apply database migrations."""
    database.upgrade(database_url(load_or_fail()))
    click.echo("database is up to date")
