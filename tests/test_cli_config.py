"""`alertbot config check` shows durations as the TOML writes them, and masks passwords."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli.output import duration, masked_url
from bot.settings import parse_duration
from tests.process import Alertbot

TOML = """\
[rules]
max_alert_age = "24h"

[slack]
batch_window = "30s"

[[slack.routes]]
channel = "C0SPACEOPS"
batch_window = "0s"

[delivery]
retry_cap = "5m"
retry_base = "500ms"
"""


def test_config_check_prints_durations_as_the_config_file_writes_them(tmp_path: Path) -> None:
    result = Alertbot.make(tmp_path, TOML).cli("config", "check")
    assert result.returncode == 0, result.stderr
    desk = json.loads(result.stdout)["desk"]
    assert desk["rules"]["max_alert_age"] == "24h"
    assert desk["slack"]["batch_window"] == "30s"
    assert desk["slack"]["routes"][0]["batch_window"] == "0s"
    assert (desk["delivery"]["retry_cap"], desk["delivery"]["retry_base"]) == ("5m", "500ms")
    assert desk["slack"]["routes"][0]["channel"] == "C0SPACEOPS"  # the rest as before
    assert "PT" not in result.stdout  # no ISO 8601 durations anywhere


@pytest.mark.parametrize(("value", "shown"), [
    (timedelta(0), "0s"), (timedelta(seconds=30), "30s"), (timedelta(minutes=5), "5m"),
    (timedelta(hours=24), "24h"), (timedelta(milliseconds=500), "500ms"),
    (timedelta(minutes=90), "90m"), (timedelta(seconds=1.5), "1500ms"),
    (timedelta(days=2), "48h"), (timedelta(seconds=61), "61s"),
])
def test_a_duration_is_shown_as_one_number_and_unit_that_reads_back_the_same(
    value: timedelta, shown: str,
) -> None:
    assert duration(value) == shown
    assert parse_duration(shown) == value  # what config check shows can go in the TOML file


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://desk:pg-secret@db.example/ab", "postgresql://desk:***@db.example/ab"),
    ("postgresql+psycopg://desk:p%40ss:w/rd@db:5432/ab?sslmode=require",
     "postgresql+psycopg://desk:***@db:5432/ab?sslmode=require"),
    ("postgresql://desk@db.example/ab", "postgresql://desk@db.example/ab"),
    ("sqlite:///var/alertbot.db", "sqlite:///var/alertbot.db"),
    ("desk:secret@db.example/ab", "**********"),  # not a URL SQLAlchemy reads: show nothing
])
def test_a_database_password_is_masked_as_sqlalchemy_reads_it(url: str, shown: str) -> None:
    from sqlalchemy.engine import make_url

    assert masked_url(url) == shown
    if "://" in url:  # the part masked is exactly the password SQLAlchemy would use
        password = make_url(url).password
        assert password is None or str(password) not in masked_url(url)
