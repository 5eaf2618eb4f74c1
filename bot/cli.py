"""The command line (SPEC §7): a thin door. Errors are one sentence on stderr unless --debug."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import archive, outbox, subscribers
from bot import db as database
from bot.db import Database
from bot.pipeline import Pipeline
from bot.rules import corroborate
from bot.service import Service
from bot.settings import Config, ConfigError, load_config
from bot.stories import Story, UnusableInput, parse_batch

P = ParamSpec("P")
R = TypeVar("R")


class Failure(click.ClickException):
    """An error the operator can act on; printed as one sentence."""

    def show(self, file: Any = None) -> None:
        click.echo(f"alertbot: {self.message}", err=True)


def _setup_logging(debug: bool, service: bool) -> None:
    # The service logs its decisions; one-shot commands print their own report and log only
    # what needs attention.
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if service else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    for noisy in ("apscheduler", "slack_sdk", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise Failure(f"{exc}. Fix it and run `alertbot config check`.") from None


def _database_url(config: Config) -> str:
    return config.settings.database_url.get_secret_value()


def _ensure_schema(config: Config) -> None:
    # SQLite upgrades itself so `make run` works on a fresh machine; PostgreSQL is upgraded by
    # the operator (`alertbot db upgrade`), so replicas never race on a migration.
    if _database_url(config).startswith("sqlite"):
        database.upgrade(_database_url(config))


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn database and config failures into one sentence (tracebacks only with --debug)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, KeyboardInterrupt):
            raise
        except SQLAlchemyError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise Failure(f"database error ({type(exc).__name__}): check DATABASE_URL and run "
                          "`alertbot db upgrade`") from None
        except OSError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise Failure(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")) from None

    return wrapper


def _run_loop(main: Awaitable[R]) -> R:
    """Run the service's one event loop: uvloop where it exists (it halves loop overhead)."""
    try:
        import uvloop
    except ImportError:  # not on Windows; the standard loop works the same, a little slower
        return asyncio.run(main)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


async def _with_service(config: Config, work: Callable[[Service], Awaitable[R]]) -> R:
    service = Service(config)
    try:
        return await work(service)
    finally:
        await service.close()


@contextlib.contextmanager
def _transaction(config: Config) -> Iterator[Connection]:
    """One transaction for a listing or admin command (they need no event loop)."""
    _ensure_schema(config)
    engine = database.create(_database_url(config))
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], object]]:
    """A progress bar on a terminal for long work; silent when stderr is a file or pipe."""
    if total < 1000 or not sys.stderr.isatty():
        yield lambda done: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _emit(rows: Sequence[dict[str, Any]], as_json: bool, columns: Iterable[str]) -> None:
    if as_json:
        click.echo(json.dumps(list(rows), default=str, indent=2))
        return
    cols = list(columns)
    for row in rows:
        click.echo("  ".join(str(row.get(col, "") if row.get(col) is not None else "-")
                             for col in cols))
    if not rows:
        click.echo("(none)")


@click.group()
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """alertbot: action-item alerts to Slack and email."""
    _setup_logging(debug, service=ctx.invoked_subcommand == "run")


@main.command()
@command
def run() -> None:
    """Run the service: scheduler, delivery workers and HTTP server."""
    config = _config()
    _ensure_schema(config)
    service = Service(config)
    with contextlib.suppress(KeyboardInterrupt):
        _run_loop(service.run())


@main.command()
@command
def check() -> None:
    """One pass: poll sources, evaluate, deliver everything due, then exit."""
    config = _config()
    _ensure_schema(config)
    summary = _run_loop(_with_service(config, lambda s: s.check()))
    click.echo(", ".join(f"{value} {key}" for key, value in summary.items()))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@command
def ingest(files: tuple[str, ...]) -> None:
    """Store and evaluate stories from FILES (- for stdin). Exit 1 if any story is rejected."""
    config = _config()
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
            with _progress(len(batch.stories), f"ingesting {name}") as advance:
                report = await pipeline.ingest(batch, f"ingest:{name}", datetime.now(UTC),
                                               advance)
            stored += len(report.accepted)
            rejected += len(report.rejected)
            for item in report.rejected:
                who = f"story {item['id']!r}" if item["id"] else f"story #{item['position']}"
                click.echo(f"{name}: {who}: {item['field']}: {item['reason']}", err=True)
        return stored, rejected

    _ensure_schema(config)
    db = Database(_database_url(config))
    try:
        stored, rejected = _run_loop(work(db))
    finally:
        db.close()
    click.echo(f"{stored} stored, {rejected} rejected")
    sys.exit(1 if rejected else 0)


@main.command()
@click.argument("story_id")
@command
def story(story_id: str) -> None:
    """Show a story's key facts, scores, sources and history."""
    with _transaction(_config()) as db:
        found = archive.load(db, [story_id]).get(story_id)
        versions = archive.history(db, story_id)
    if found is None:
        raise Failure(f"no story with id {story_id!r}; see `alertbot stories rejected` if it "
                      "was refused")
    click.echo(_story_text(found, versions))


def _story_text(story: Story, versions: list[Any]) -> str:
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
    with _transaction(_config()) as db:
        rows = [dict(r._mapping) for r in archive.rejections(db)]
    _emit(rows, as_json, ("received_at", "origin", "story_id", "position", "field", "reason"))


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
    with _transaction(_config()) as db:
        rows = [dict(r._mapping) for r in outbox.listing(db, status)]
    _emit(rows, as_json, ("id", "status", "kind", "target", "attempts", "created_at", "sent_at",
                          "reason", "last_error"))


@deliveries.command("retry")
@click.argument("delivery_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Retry every dead delivery.")
@command
def deliveries_retry(delivery_id: int | None, dead: bool) -> None:
    """Queue a failed or dead delivery (or every dead one) to be sent again."""
    if (delivery_id is None) == (not dead):
        raise Failure("give a delivery ID or --dead (not both)")
    with _transaction(_config()) as db:
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
    cfg = _config()
    settings = cfg.settings.model_dump(mode="json")
    # SecretStr dumps as '**********'; the database URL keeps its host but masks a password.
    settings["database_url"] = make_url(_database_url(cfg)).render_as_string(hide_password=True)
    click.echo(json.dumps({"settings": settings, "config_file": str(cfg.config_file),
                           "desk": cfg.desk.model_dump(mode="json")}, indent=2, default=str))


@main.group()
def db() -> None:
    """Database."""


@db.command("upgrade")
@command
def db_upgrade() -> None:
    """Apply database migrations."""
    database.upgrade(_database_url(_config()))
    click.echo("database is up to date")


@main.group("subscribers")
def subscribers_group() -> None:
    """Email subscribers."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--mode", default="daily", type=click.Choice(["instant", "daily", "both"]))
@click.option("--tz", "timezone", default="UTC")
@click.option("--topics", default="", help="Comma-separated; empty means all topics.")
@click.option("--digest-hour", default=None, help="HH:MM local (default from the config).")
@command
def subscribers_add(email: str, mode: str, timezone: str, topics: str,
                    digest_hour: str | None) -> None:
    """Add (or update) an email subscriber."""
    config = _config()
    try:
        subscriber = subscribers.validate(email, mode, timezone, topics.split(","),
                                          digest_hour or config.desk.email.digest_hour)
    except ValueError as exc:
        raise Failure(str(exc)) from None

    with _transaction(config) as db:
        subscribers.add(db, subscriber, datetime.now(UTC))
    click.echo(f"subscribed {subscriber.email} ({subscriber.mode}, {subscriber.timezone})")


@subscribers_group.command("remove")
@click.argument("email")
@command
def subscribers_remove(email: str) -> None:
    """Remove an email subscriber."""
    with _transaction(_config()) as db:
        removed = subscribers.remove(db, email)
    if not removed:
        raise Failure(f"{email} is not subscribed")
    click.echo(f"removed {email}")


@subscribers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def subscribers_list(as_json: bool) -> None:
    """List email subscribers."""
    with _transaction(_config()) as db:
        found = subscribers.listing(db)
    rows = [{"email": s.email, "mode": s.mode, "tz": s.timezone, "topics": ",".join(s.topics),
             "digest_hour": s.digest_hour} for s in found]
    _emit(rows, as_json, ("email", "mode", "tz", "topics", "digest_hour"))
