"""The command line: loud config errors, masked secrets, JSON listings, one-sentence errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import story
from tests.fakes import free_port
from tests.process import Alertbot

GOOD = '[rules]\nmin_impact = 8\n\n[[slack.routes]]\nchannel = "C0SPACEOPS"\n'


@pytest.mark.parametrize(("text", "named"), [
    ("[rules]\nmin_impact = 11\n", "rules.min_impact"),
    ('[[slack.routes]]\nchannel = "#general"\n', "slack.routes.0.channel"),
    ('[[slack.routes]]\nchannel = "C0X1"\ntimezone = "Mars/Olympus"\n', "slack.routes.0.timezone"),
    ('[slack]\npacing = "soon"\n', "slack.pacing"),
    ('[email]\ndigest_hour = "7am"\n', "email.digest_hour"),
    ("[rules]\nmin_impact = \n", "not valid TOML"),
    ("[rulez]\nmin_impact = 8\n", "rulez"),
])
def test_a_bad_setting_stops_with_a_message_naming_it_and_its_file(
    tmp_path: Path, text: str, named: str
) -> None:
    bot = Alertbot.make(tmp_path, text)
    result = bot.cli("config", "check")
    assert result.returncode != 0
    assert named in result.stderr and "alertbot.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_environment_value_is_named(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD, SMTP_SECURITY="sometimes")
    result = bot.cli("config", "check")
    assert result.returncode != 0
    assert "SMTP_SECURITY" in result.stderr and "environment" in result.stderr


@pytest.mark.parametrize(("url", "said"), [
    ("mysql://desk:hunter2@db.example/alerts", "DATABASE_URL: unsupported database 'mysql'"),
    ("", "DATABASE_URL: empty: leave it out for SQLite"),
    ("  ", "DATABASE_URL: empty: leave it out for SQLite"),
    ("host=db user=desk password=hunter2", "DATABASE_URL: not a database URL"),
    ("SQLITE:///x.db", "DATABASE_URL: unsupported database 'SQLITE'"),
])
def test_a_database_alertbot_cannot_use_is_named_without_its_password(
    tmp_path: Path, url: str, said: str,
) -> None:
    bot = Alertbot.make(tmp_path, GOOD, DATABASE_URL=url)
    result = bot.cli("config", "check")
    assert result.returncode != 0
    assert said in result.stderr, result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_an_sqlite_too_old_for_the_schema_is_named_before_anything_runs(tmp_path: Path) -> None:
    """RETURNING needs SQLite 3.35; an older system library is said at start, by the setting
    it concerns, not found later as a failed statement. The old library is simulated: the
    `sqlite3` module reports 3.31.1 in the child process."""
    old = tmp_path / "old-sqlite"
    old.mkdir()
    (old / "sitecustomize.py").write_text(
        "import sqlite3\nsqlite3.sqlite_version_info = (3, 31, 1)\n"
        "sqlite3.sqlite_version = '3.31.1'\n")
    bot = Alertbot.make(tmp_path, GOOD, PYTHONPATH=str(old))
    for command in (("config", "check"), ("db", "upgrade")):
        result = bot.cli(*command)
        assert result.returncode != 0
        assert ("DATABASE_URL: this Python's SQLite is 3.31.1; alertbot needs 3.35.0 or later"
                in result.stderr), result.stderr
        assert "internal error" not in result.stderr


def test_postgresql_without_a_shared_secret_key_is_refused(tmp_path: Path) -> None:
    """Replicas each generating a key would sign unsubscribe links the others refuse."""
    bot = Alertbot.make(tmp_path, GOOD, DATABASE_URL="postgresql://desk:pg-secret@db.example/ab")
    del bot.env["ALERTBOT_SECRET_KEY"]
    result = bot.cli("config", "check")
    assert result.returncode != 0
    assert "ALERTBOT_SECRET_KEY (or ALERTBOT_SECRET_KEY_FILE) is required with a PostgreSQL" in (
        result.stderr)
    assert "pg-secret" not in result.stderr and "Traceback" not in result.stderr


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    bot.env["ALERTBOT_CONFIG"] = str(tmp_path / "missing.toml")
    result = bot.cli("config", "check")
    assert result.returncode != 0 and "missing.toml" in result.stderr


def test_config_check_masks_every_secret(tmp_path: Path) -> None:
    secrets = {"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sign-secret",
               "SMTP_PASSWORD": "smtp-secret", "ALERTBOT_SECRET_KEY": "hmac-secret",
               "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    bot = Alertbot.make(tmp_path, GOOD, **secrets)
    bot.env["ALERTBOT_INGEST_TOKEN"] = "ingest-secret"
    result = bot.cli("config", "check")
    assert result.returncode == 0, result.stderr
    for name, value in {**secrets, "ALERTBOT_INGEST_TOKEN": "ingest-secret"}.items():
        if name != "DATABASE_URL":
            assert value not in result.stdout + result.stderr
    assert json.loads(result.stdout)["settings"]["slack_bot_token"] == "**********"


def test_a_database_password_is_masked(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD, DATABASE_URL="postgresql://desk:pg-secret@db.example/ab")
    result = bot.cli("config", "check")
    assert "pg-secret" not in result.stdout + result.stderr
    assert "postgresql://desk:***@db.example/ab" in result.stdout


def test_ingest_lists_and_retries_deliveries_with_json_output(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    source = tmp_path / "one.json"
    source.write_text(json.dumps(story(id="cli-story")))
    assert bot.cli("ingest", str(source)).returncode == 0
    assert bot.cli("ingest", "-", stdin=source.read_bytes()).stdout.strip() == (
        "0 stored, 0 rejected")
    rows = json.loads(bot.cli("deliveries", "list", "--json").stdout)
    assert [(r["status"], r["kind"], r["target"]) for r in rows] == [
        ("pending", "alert", "slack:C0SPACEOPS")]
    assert "impact 8 ≥ 8" in rows[0]["reason"]
    retried = bot.cli("deliveries", "retry", str(rows[0]["id"]))
    assert retried.returncode != 0 and "not failed or dead" in retried.stderr
    shown = bot.cli("story", "cli-story")
    assert "verified by 2 independent sources (SpaceNews, Reuters)" in shown.stdout
    assert "1. Fact one" in shown.stdout
    missing = bot.cli("story", "nope")
    assert missing.returncode != 0 and missing.stderr.startswith("alertbot: no story")


def test_ingest_of_unusable_input_exits_2(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    result = bot.cli("ingest", "-", stdin=b"not json at all")
    assert result.returncode == 2 and "not JSON" in result.stderr


def test_json_lines_with_raw_line_separators_in_a_title_are_stored_whole(
    tmp_path: Path,
) -> None:
    """JSON allows U+2028, U+2029 and U+0085 raw inside a string; JSON Lines end at \\n only.
    Splitting lines as str.splitlines does cut such a story in two, and rejected it."""
    bot = Alertbot.make(tmp_path, GOOD)
    title = "Launch scrubbed\u2028second attempt\u2029Friday\u0085 maybe"
    source = tmp_path / "separators.jsonl"
    source.write_bytes(
        json.dumps(story(id="with-separators", title=title), ensure_ascii=False).encode()
        + b"\r\n" + json.dumps(story(id="after-them")).encode() + b"\n")
    result = bot.cli("ingest", str(source))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("2 stored, 0 rejected"), result.stdout
    shown = bot.cli("story", "with-separators")
    assert shown.returncode == 0, shown.stderr
    assert "Launch scrubbed" in shown.stdout and "maybe" in shown.stdout, shown.stdout


def test_subscribers_are_added_listed_and_removed(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    added = bot.cli("subscribers", "add", "Ed@Desk.Example", "--mode", "both", "--tz",
                    "Europe/London", "--topics", "launch,ai", "--digest-hour", "06:30")
    assert added.returncode == 0, added.stderr
    [listed] = json.loads(bot.cli("subscribers", "list", "--json").stdout)
    next_digest = listed.pop("next_digest")
    assert listed == {"email": "ed@desk.example", "mode": "both", "tz": "Europe/London",
                      "topics": "ai,launch", "digest_hour": "06:30", "min_impact": None,
                      "paused_until": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 06:30 (GMT|BST)", next_digest), next_digest
    bad = bot.cli("subscribers", "add", "x@y.example", "--tz", "Nowhere/Town")
    assert bad.returncode != 0 and "tz" in bad.stderr and "Traceback" not in bad.stderr
    assert bot.cli("subscribers", "remove", "ed@desk.example").returncode == 0
    assert bot.cli("subscribers", "remove", "ed@desk.example").returncode != 0


def test_a_story_whose_counts_disagree_is_flagged_in_alertbot_story(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, GOOD)
    source = tmp_path / "flag.json"
    source.write_text(json.dumps(story(id="flagged", verified_by=4)))
    assert bot.cli("ingest", str(source)).returncode == 0
    shown = bot.cli("story", "flagged").stdout
    assert "FLAG: verified_by 4 disagrees with 2 distinct outlets in sources" in shown
    assert "verified by 2 independent sources" in shown  # the smaller count wins


def test_the_embedded_defaults_alert_on_the_bundled_samples(tmp_path: Path) -> None:
    """What `make run` does, as one `check` pass: shipped config, samples, no credentials."""
    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "config", tmp_path / "config")
    bot = Alertbot.make(tmp_path, GOOD)
    for name in ("ALERTBOT_CONFIG", "ALERTBOT_OUTBOX_DIR", "DATABASE_URL"):
        del bot.env[name]  # the defaults: config/alertbot.toml, var/outbox, var/alertbot.db
    subprocess.run([sys.executable, str(repo / "samples" / "freshen.py"), str(repo / "samples"),
                    str(tmp_path / "var" / "samples")], check=True)
    assert bot.cli("subscribers", "add", "editor@desk.example", "--mode", "instant"
                   ).returncode == 0
    checked = bot.cli("check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("34 stored, 0 rejected, 5 sent")
    assert "no SLACK_BOT_TOKEN" in checked.stderr and "no SMTP_HOST" in checked.stderr
    slack = sorted(p.name for p in (tmp_path / "var" / "outbox" / "slack").iterdir())
    assert slack == ["000001-C0SPACEOPS.json", "000002-C0LAUNCHES.json",
                     "000003-C0SPACEOPS.json"]
    digest = json.loads((tmp_path / "var/outbox/slack/000001-C0SPACEOPS.json").read_text())
    assert digest["blocks"][0]["text"]["text"] == "18 new action items"
    emails = sorted((tmp_path / "var" / "outbox" / "email").glob("*.eml"))
    assert len(emails) == 2


def test_check_goes_on_when_an_http_source_is_unreachable(tmp_path: Path) -> None:
    feed = f"http://127.0.0.1:{free_port()}/api/scored-stories"  # nothing listens there
    bot = Alertbot.make(tmp_path, GOOD + f'\n[[sources]]\nkind = "http"\nurl = "{feed}"\n')
    result = bot.cli("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0 stored, 0 rejected")
    assert f"http source {feed} unreachable (ClientConnectorError" in result.stderr
