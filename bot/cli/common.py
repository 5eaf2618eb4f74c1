"""What every command shares: the `main` group, one-sentence errors, config, database.

`alertbot --help`, `--version` and the listing commands must start at once, so this module and
the command modules import only click and the standard library at the top. Each command imports
the parts of alertbot it needs when it runs: the service (Bolt, uvicorn, aiohttp, the
scheduler) only for `run`, `check`, `ingest`, `digest send`, `test` and `preview`.
tests/test_cli_startup.py holds to it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bot.service import Service
    from bot.settings import Config

P = ParamSpec("P")
R = TypeVar("R")


class Failure(click.ClickException):
    """An error the operator can act on; printed as one sentence."""

    def show(self, file: Any = None) -> None:
        click.echo(f"alertbot: {self.message}", err=True)


def setup_logging(debug: bool, service: bool) -> None:
    from bot import logs

    logs.setup(debug, service)


def load_or_fail() -> Config:
    from bot.settings import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        raise Failure(f"{exc}. Fix it and run `alertbot config check`.") from None


def database_url(config: Config) -> str:
    return config.settings.database_url.get_secret_value()


def ensure_schema(config: Config) -> None:
    # SQLite upgrades itself so `make run` works on a fresh machine; PostgreSQL is upgraded by
    # the operator (`alertbot db upgrade`), so replicas never race on a migration.
    # A replica of a new release started before that upgrade stops here, saying so.
    from bot import db as database

    url = database_url(config)
    if url.startswith("sqlite"):
        database.upgrade(url)
    elif (why := database.behind(url)) is not None:
        raise Failure(f"{why}: run `alertbot db upgrade` first")


def _sentence(exc: Exception) -> str:
    """One sentence for an error a command did not expect."""
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
    # Imported here, not at the top: an SQLAlchemy error means SQLAlchemy is already loaded.
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return (f"database error ({type(exc).__name__}): check DATABASE_URL and run "
                "`alertbot db upgrade`")
    # a bug: still one sentence, the traceback behind --debug
    return (f"internal error ({type(exc).__name__}: {exc}); run again with --debug for the "
            "traceback and report it")


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Turn database and config failures into one sentence (tracebacks only with --debug)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise Failure(_sentence(exc)) from None

    return wrapper


def run_loop(work: Awaitable[R]) -> R:
    """Run the service's one event loop: uvloop where it exists (it halves loop overhead)."""
    import asyncio  # here, not at the top: --help and the listings need no event loop

    try:
        import uvloop
    except ImportError:  # not on Windows; the standard loop works the same, a little slower
        return asyncio.run(work)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)  # type: ignore[arg-type]


async def with_service(config: Config, work: Callable[[Service], Awaitable[R]]) -> R:
    from bot.service import Service

    service = Service(config)
    try:
        return await work(service)
    finally:
        await service.close()


@contextlib.contextmanager
def transaction(config: Config) -> Iterator[Connection]:
    """One transaction for a listing or admin command (they need no event loop)."""
    from bot import db as database

    ensure_schema(config)
    engine = database.create(database_url(config))
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], object]]:
    """A progress bar on a terminal for long work; silent when stderr is a file or pipe."""
    if total < 1000 or not sys.stderr.isatty():
        yield lambda done: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


@click.group()
@click.version_option(package_name="alertbot", prog_name="alertbot",
                      message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """alertbot: action-item alerts to Slack and email."""
    setup_logging(debug, service=ctx.invoked_subcommand in ("run", "deliver-child"))
