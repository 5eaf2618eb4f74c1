"""How listings and settings read on a terminal: aligned tables, durations as a user writes them.

Only the standard library and click: `alertbot --help` imports this module too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import click

# Largest first; days are left out on purpose: the config file's own examples say "24h".
_UNITS = ((3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms"))


def duration(value: timedelta) -> str:
    """A timedelta as the config file writes it: "30s", "5m", "24h", "0s", "500ms".

    One number and one unit, the largest that states it exactly (90 minutes is "90m"), since
    that is what `settings.parse_duration` reads back: a value copied from `config check` into
    the TOML file means the same thing there.
    """
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    for size, unit in _UNITS:
        if millis % size == 0:
            return f"{millis // size}{unit}"
    raise AssertionError("unreachable: every whole number of milliseconds divides by 1")


def plain(value: Any) -> Any:
    """`json.dumps` default for settings: durations as written, paths and the rest as text."""
    if isinstance(value, timedelta):
        return duration(value)
    return str(value)


def cell(value: Any) -> str:
    """One table cell on one line; a missing or empty value shows as "-" so columns stay
    readable."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()
    return " ".join(str(value).split())  # an error's newlines would break the row


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """A header row and aligned columns, each as wide as its widest cell. The last column is
    not padded: it is where long text (a reason) goes, so it may run on."""
    body = [[cell(row.get(column)) for column in columns] for row in rows]
    header = [column.upper() for column in columns]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(columns))]
    return ["  ".join([text.ljust(width) for text, width in zip(line[:-1], widths, strict=False)]
                      + line[-1:]).rstrip()
            for line in [header, *body]]


def emit(rows: Sequence[dict[str, Any]], as_json: bool, columns: Iterable[str]) -> None:
    """Every listing command's output: a JSON array of objects, or a table for people."""
    if as_json:
        click.echo(json.dumps(list(rows), default=str, indent=2))
        return
    if not rows:
        click.echo("(none)")
        return
    for line in table(rows, list(columns)):
        click.echo(line)


def emit_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A listing as CSV for a spreadsheet: a header row, lists joined with "; ", times as
    ISO 8601, a missing value as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    click.echo(out.getvalue(), nl=False)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# As SQLAlchemy reads a URL's credentials (sqlalchemy.engine.url._parse_url): the user runs to
# the first ':' or '/', the password to the first '@'. Matching the same way masks exactly the
# part SQLAlchemy would send as the password, without importing SQLAlchemy for `config check`.
_CREDENTIALS = re.compile(r"[\w+]+://[^:/]*(?::(?P<password>[^@]*))?@")


def masked_url(url: str) -> str:
    """A database URL with its password shown as ***."""
    found = _CREDENTIALS.match(url)
    if found is None:
        # No user part that SQLAlchemy would read: an '@' left means a form we cannot parse,
        # and showing none of it is safer than showing a password.
        return "**********" if "@" in url else url
    if found["password"] is None:
        return url
    return url[:found.start("password")] + "***" + url[found.end("password"):]
