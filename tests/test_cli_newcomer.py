"""The newcomer's path in README.md: `make run` twice, then preview the demo reader's digest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import story
from tests.process import Alertbot

REPO = Path(__file__).resolve().parent.parent
TOML = "[rules]\nmin_impact = 8\n"


def freshen(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`make run`'s first step, with var/ in `tmp_path`."""
    return subprocess.run([sys.executable, str(REPO / "samples" / "freshen.py"),
                           str(REPO / "samples"), str(tmp_path / "var" / "samples")],
                          capture_output=True, text=True, check=True, timeout=60)


def make_run(bot: Alertbot) -> tuple[str, str]:
    """`make run` as one `check` pass: what freshen.py and `subscribers add` said, in order."""
    said = freshen(bot.tmp)
    added = bot.cli("subscribers", "add", "editor@desk.example", "--mode", "instant")
    assert added.returncode == 0, added.stderr  # make would stop here otherwise
    checked = bot.cli("check")
    assert checked.returncode == 0, checked.stderr
    return said.stderr + said.stdout, added.stdout + checked.stdout


def test_a_second_make_run_says_once_that_the_demo_already_ran(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config")
    bot = Alertbot.make(tmp_path, TOML)
    for name in ("ALERTBOT_CONFIG", "ALERTBOT_OUTBOX_DIR", "DATABASE_URL"):
        del bot.env[name]  # make run's defaults: config/alertbot.toml, var/

    first_note, first = make_run(bot)
    assert first_note == ""
    assert first.startswith("subscribed editor@desk.example (instant, UTC)\n")
    assert re.search(r"\b[1-9]\d* sent\b", first), first
    outbox = sorted(p.name for p in (tmp_path / "var" / "outbox").rglob("*.*"))

    second_note, second = make_run(bot)
    assert second_note.count("The demo has already run here") == 1
    assert "not sent" not in second_note and "make clean && make run" in second_note
    assert second.startswith("editor@desk.example is already subscribed (instant, UTC): "
                             "nothing to change\n")
    assert "already" not in second.splitlines()[1]  # said once, by freshen.py, not again
    assert re.search(r"\b0 sent\b", second), second
    assert sorted(p.name for p in (tmp_path / "var" / "outbox").rglob("*.*")) == outbox


def test_the_advice_holds_make_clean_removes_var() -> None:
    makefile = (REPO / "Makefile").read_text()
    clean = makefile[makefile.index("\nclean:"):]
    assert re.search(r"^\trm -rf var\b", clean, re.M), clean


def test_freshen_says_nothing_when_the_database_holds_no_stories(tmp_path: Path) -> None:
    """Subscribing someone first creates var/alertbot.db, but no demo has run yet."""
    bot = Alertbot.make(tmp_path, TOML, DATABASE_URL=f"sqlite:///{tmp_path}/var/alertbot.db")
    assert bot.cli("subscribers", "add", "ed@desk.example").returncode == 0
    assert (tmp_path / "var" / "alertbot.db").exists()
    said = freshen(tmp_path)
    assert said.stderr == "" and said.stdout == ""


def test_adding_a_subscriber_again_changes_nothing_and_a_change_updates(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    args = ("subscribers", "add", "ed@desk.example", "--tz", "Europe/London")
    assert bot.cli(*args).stdout == "subscribed ed@desk.example (daily, Europe/London)\n"
    before = bot.cli("subscribers", "list", "--json").stdout
    again = bot.cli(*args)
    assert again.returncode == 0
    assert again.stdout == ("ed@desk.example is already subscribed (daily, Europe/London): "
                            "nothing to change\n")
    assert bot.cli("subscribers", "list", "--json").stdout == before
    changed = bot.cli(*args, "--topics", "launch")
    assert changed.stdout == "updated ed@desk.example (daily, Europe/London)\n"


def test_preview_of_an_instant_only_reader_shows_the_digest_they_would_get(
    tmp_path: Path,
) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    assert bot.cli("subscribers", "add", "editor@desk.example", "--mode", "instant"
                   ).returncode == 0
    source = tmp_path / "news.json"
    source.write_text(json.dumps([story(id="a", title="Hypersonic test over the Pacific")]))
    assert bot.cli("ingest", str(source)).returncode == 0
    recorded = bot.cli("deliveries", "--json").stdout  # their instant alert, pending

    shown = bot.cli("preview", "--digest", "editor@desk.example", "--format", "text")
    assert shown.returncode == 0, shown.stderr
    note, subject = shown.stderr.splitlines()
    assert note == ("editor@desk.example gets instant emails only (mode instant), no daily "
                    "digest; this is what a daily digest would hold for them now.")
    assert subject.startswith("Subject: Daily digest, ") and "1 action item" in subject
    assert "Hypersonic test over the Pacific" in shown.stdout
    # A what-if: nothing recorded, and the reader is still instant-only.
    assert bot.cli("deliveries", "--json").stdout == recorded
    [reader] = json.loads(bot.cli("subscribers", "list", "--json").stdout)
    assert (reader["mode"], reader["next_digest"]) == ("instant", None)

    bot.cli("subscribers", "add", "editor@desk.example", "--mode", "daily")
    daily = bot.cli("preview", "--digest", "editor@desk.example")
    assert daily.returncode == 0 and daily.stderr.startswith("Subject: Daily digest, ")
    assert "instant emails only" not in daily.stderr


def test_subscriber_settings_take_the_value_written_and_an_empty_hour_is_refused(
    tmp_path: Path,
) -> None:
    """`--topics ""` is all topics and `--digest-hour 00:00` is midnight, as written; an empty
    `--digest-hour` is an error by name, not a silent fall back to the desk's hour."""
    bot = Alertbot.make(tmp_path, '[email]\ndigest_hour = "08:00"\n')
    added = bot.cli("subscribers", "add", "ed@desk.example", "--topics", "",
                    "--digest-hour", "00:00")
    assert added.returncode == 0, added.stderr
    [listed] = json.loads(bot.cli("subscribers", "list", "--json").stdout)
    assert listed["topics"] == "" and listed["digest_hour"] == "00:00"
    empty = bot.cli("subscribers", "add", "bo@desk.example", "--digest-hour", "")
    assert empty.returncode == 1
    assert "digest_hour: '' is not HH:MM" in empty.stderr
