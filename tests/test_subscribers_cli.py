"""The email commands as an operator runs them: import, list, preview, digest send, test."""

from __future__ import annotations

import csv
import email
import io
import json
import re
from email import policy
from pathlib import Path

from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.process import Alertbot

TOML = "[rules]\nmin_impact = 8\n"


def smtp_env(port: int) -> dict[str, str]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
            "EMAIL_FROM": "Desk <alerts@desk.example>",
            "ALERTBOT_PUBLIC_URL": "https://alerts.desk.example"}


def test_a_csv_of_1000_rows_with_20_bad_imports_980_and_names_each_bad_line(
    tmp_path: Path,
) -> None:
    bad_cells = [  # (column, value, what the report must say)
        ("email", "not-an-address", "email"), ("email", "", "email"),
        ("email", "two@@desk.example", "email"), ("mode", "weekly", "mode"),
        ("tz", "Mars/Olympus_Mons", "tz"), ("tz", "GMT+25", "tz"),
        ("digest_hour", "7am", "digest_hour"), ("digest_hour", "24:00", "digest_hour"),
        ("digest_hour", "07:60", "digest_hour"), ("mode", "DAILY!", "mode"),
    ] * 2
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["email", "mode", "tz", "topics", "digest_hour"])
    bad_lines: dict[int, str] = {}
    for n in range(1000):
        row = {"email": f"reader{n}@desk.example", "mode": ("daily", "both", "instant")[n % 3],
               "tz": ("Europe/London", "Pacific/Auckland", "America/Los_Angeles")[n % 3],
               "topics": "launch;satellites" if n % 2 else "", "digest_hour": "07:00"}
        if n % 50 == 7:  # 20 bad rows, spread through the file
            column, value, named = bad_cells[len(bad_lines)]
            row[column] = value
            bad_lines[n + 2] = named  # line 1 is the header
        writer.writerow(row.values())
    source = tmp_path / "subscribers.csv"
    source.write_text(rows.getvalue(), encoding="utf-8")

    bot = Alertbot.make(tmp_path, TOML)
    result = bot.cli("subscribers", "import", str(source))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "980 imported (980 new, 0 updated), 20 rejected"
    reported = result.stderr.strip().splitlines()
    assert len(reported) == 20
    for line, (number, named) in zip(reported, sorted(bad_lines.items()), strict=True):
        assert line.startswith(f"{source}:{number}: {named}: "), line
    listed = json.loads(bot.cli("subscribers", "list", "--json").stdout)
    assert len(listed) == 980
    one = next(s for s in listed if s["email"] == "reader1@desk.example")
    assert (one["mode"], one["tz"], one["topics"]) == ("both", "Pacific/Auckland",
                                                       "launch,satellites")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 07:00 NZ[DS]T", one["next_digest"])
    # Importing the same file again updates, adds nothing.
    again = bot.cli("subscribers", "import", str(source))
    assert again.stdout.strip() == "980 imported (0 new, 980 updated), 20 rejected"


def test_a_csv_without_the_header_is_refused_whole(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("a@desk.example,daily,UTC,,07:00\n")
    result = Alertbot.make(tmp_path, TOML).cli("subscribers", "import", str(source))
    assert result.returncode == 1
    assert "bad.csv:1: the header must name the columns email,mode,tz,topics,digest_hour" in (
        result.stderr)


def reader_and_two_stories(tmp_path: Path, toml: str, smtp_port: int) -> Alertbot:
    """A daily reader in London and two action items ingested with the CLI, as a user would."""
    bot = Alertbot.make(tmp_path, toml, **smtp_env(smtp_port))
    assert bot.cli("subscribers", "add", "ed@desk.example", "--tz", "Europe/London"
                   ).returncode == 0
    source = tmp_path / "news.json"
    source.write_text(json.dumps([story(id="a", title="Hypersonic test over the Pacific"),
                                  story(id="b", title="Budget line cut", impact=9)]))
    assert bot.cli("ingest", str(source)).returncode == 0
    return bot


def test_preview_shows_exactly_the_digest_that_digest_send_then_sends_and_records_nothing(
    tmp_path: Path, smtp: tuple[SmtpRecorder, int],
) -> None:
    recorder, port = smtp
    bot = reader_and_two_stories(tmp_path, TOML, port)

    html = bot.cli("preview", "--digest", "ed@desk.example")
    text = bot.cli("preview", "--digest", "ed@desk.example", "--format", "text")
    assert html.returncode == 0 and text.returncode == 0, html.stderr
    assert html.stderr.startswith("Subject: Daily digest, ") and "2 action items" in html.stderr
    assert html.stdout.index("Budget line cut") < html.stdout.index("Hypersonic test")
    assert json.loads(bot.cli("deliveries", "list", "--json").stdout) == []  # nothing recorded
    assert recorder.messages == []

    sent = bot.cli("digest", "send", "--now")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip().startswith("1 planned, 0 empty, 0 already, 1 sent")
    [(_, rcpts, raw)] = recorder.messages
    assert rcpts == ["ed@desk.example"]
    received = email.message_from_bytes(raw, policy=policy.default)
    for part, preview in (("html", html.stdout), ("plain", text.stdout)):
        body = received.get_body((part,)).get_content()  # type: ignore[union-attr]
        assert normalise(body) == normalise(preview)
    nothing_new = bot.cli("digest", "send", "--now")
    assert nothing_new.stdout.strip().startswith("0 planned, 1 empty, 0 already, 0 sent")
    assert len(recorder.messages) == 1


def normalise(body: str) -> str:
    """Line endings as the transport left them, and a first digest's window start (24 h before
    the moment it renders, so it moves between the preview and the send); nothing else."""
    body = re.sub(r"since \w{3} \d\d:\d\d [A-Z]+", "since <24 h ago>", body)
    return body.replace("\r\n", "\n").strip()


def test_preview_of_a_story_in_each_format_and_clear_errors(tmp_path: Path) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    source = tmp_path / "news.json"
    source.write_text(json.dumps([story(id="s1", title="Launch scrubbed <again>")]))
    assert bot.cli("ingest", str(source)).returncode == 0
    slack = json.loads(bot.cli("preview", "--story", "s1").stdout)
    assert "Launch scrubbed &lt;again&gt;" in json.dumps(slack["blocks"])
    assert "<again>" in bot.cli("preview", "--story", "s1", "--format", "text").stdout
    assert "&lt;again&gt;" in bot.cli("preview", "--story", "s1", "--format", "html").stdout
    for args, said in ((("--story", "nope"), "no story with id 'nope'"),
                       (("--digest", "who@desk.example"), "who@desk.example is not subscribed"),
                       ((), "give --story ID or --digest EMAIL")):
        result = bot.cli("preview", *args)
        assert result.returncode == 1 and said in result.stderr and "Traceback" not in (
            result.stderr)


def test_test_email_and_test_slack_go_through_the_real_transports(
    tmp_path: Path, smtp: tuple[SmtpRecorder, int], slack: FakeSlack,
) -> None:
    recorder, port = smtp
    bot = Alertbot.make(tmp_path, TOML, slack_url=slack.url, **smtp_env(port))
    mail = bot.cli("test", "email", "Ops@Desk.Example")
    assert mail.returncode == 0, mail.stderr
    assert mail.stdout.startswith("sent a test message to ops@desk.example via email")
    [(_, rcpts, raw)] = recorder.messages
    assert rcpts == ["ops@desk.example"]
    assert "test" in email.message_from_bytes(raw, policy=policy.default)["Subject"].lower()

    posted = bot.cli("test", "slack", "C0SPACEOPS")
    assert posted.returncode == 0, posted.stderr
    [call] = slack.posts("C0SPACEOPS")
    assert "test" in call.body["text"].lower()

    slack.fail_next("chat.postMessage", error="channel_not_found")
    refused = bot.cli("test", "slack", "C0NOWHERE")
    assert refused.returncode == 1
    assert "not sent: " in refused.stderr and "channel_not_found" in refused.stderr
    rows = json.loads(bot.cli("deliveries", "list", "--json").stdout)
    assert [(r["kind"], r["status"]) for r in rows] == [
        ("test", "dead"), ("test", "sent"), ("test", "sent")]


def test_add_sets_min_impact_and_paused_until_and_list_shows_them(tmp_path: Path) -> None:
    from tests.test_cli_listing import read_table

    bot = Alertbot.make(tmp_path, TOML)
    added = bot.cli("subscribers", "add", "ana@desk.example", "--min-impact", "9",
                    "--paused-until", "2026-12-24")
    assert added.returncode == 0, added.stderr
    assert added.stdout == ("subscribed ana@desk.example (daily, UTC, min impact 9, "
                            "paused until 2026-12-24)\n")
    assert bot.cli("subscribers", "add", "bo.long.name@desk.example", "--min-impact",
                   "8.5").returncode == 0
    lines = bot.cli("subscribers", "list").stdout.splitlines()
    rows = read_table(lines)  # every column starts at one place on every line
    assert [(r["EMAIL"], r["MIN_IMPACT"], r["PAUSED_UNTIL"]) for r in rows] == [
        ("ana@desk.example", "9", "2026-12-24"), ("bo.long.name@desk.example", "8.5", "-")]
    listed = {s["email"]: s for s in json.loads(bot.cli("subscribers", "list", "--json").stdout)}
    assert (listed["ana@desk.example"]["min_impact"],
            listed["ana@desk.example"]["paused_until"]) == (9, "2026-12-24")
    assert listed["bo.long.name@desk.example"]["paused_until"] is None

    # Updated without the options, the reader's own settings stay as they are; `none` clears.
    again = bot.cli("subscribers", "add", "ana@desk.example", "--mode", "both")
    assert again.stdout == ("updated ana@desk.example (both, UTC, min impact 9, "
                            "paused until 2026-12-24)\n")
    cleared = bot.cli("subscribers", "add", "ana@desk.example", "--mode", "both",
                      "--min-impact", "none")
    assert cleared.stdout == "updated ana@desk.example (both, UTC, paused until 2026-12-24)\n"
    same = bot.cli("subscribers", "add", "ana@desk.example", "--mode", "both",
                   "--paused-until", "2026-12-24")
    assert "is already subscribed" in same.stdout

    for option, value, named in (("--min-impact", "11", "min_impact: '11'"),
                                 ("--min-impact", "high", "min_impact: 'high'"),
                                 ("--min-impact", "nan", "min_impact: 'nan'"),
                                 ("--paused-until", "24/12/2026", "paused_until: '24/12/2026'"),
                                 ("--paused-until", "2026-02-30", "paused_until: '2026-02-30'")):
        bad = bot.cli("subscribers", "add", "ana@desk.example", option, value)
        assert bad.returncode != 0 and named in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    after = {s["email"]: s for s in json.loads(bot.cli("subscribers", "list", "--json").stdout)}
    assert after == {**listed, "ana@desk.example": {**listed["ana@desk.example"],
                                                    "mode": "both", "min_impact": None}}


def test_import_takes_min_impact_and_paused_until_and_names_bad_values_by_line(
    tmp_path: Path,
) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    # A reader who set both on the preference page: an import that leaves them empty keeps them.
    assert bot.cli("subscribers", "add", "kept@desk.example", "--min-impact", "7",
                   "--paused-until", "2026-12-31").returncode == 0
    source = tmp_path / "readers.csv"
    source.write_text(
        "email,mode,tz,topics,digest_hour,min_impact,paused_until\n"
        "one@desk.example,daily,UTC,,07:00,9,2026-12-24\n"
        "two@desk.example,daily,UTC,,07:00,eleven,\n"
        "three@desk.example,daily,UTC,,07:00,,2026-02-30\n"
        "kept@desk.example,instant,UTC,,07:00,,\n"
        "four@desk.example,both,UTC,,07:00,none,none\n"
        "five@desk.example,daily,UTC,,07:00,10.5,\n", encoding="utf-8")
    result = bot.cli("subscribers", "import", str(source))
    assert result.returncode == 1
    assert result.stdout.strip() == "3 imported (2 new, 1 updated), 3 rejected"
    assert result.stderr.strip().splitlines() == [
        f"{source}:3: min_impact: 'eleven' is not an impact from 1 to 10 (or none)",
        f"{source}:4: paused_until: '2026-02-30' is not a date as YYYY-MM-DD (or none)",
        f"{source}:7: min_impact: '10.5' is not an impact from 1 to 10 (or none)"]
    listed = {s["email"]: (s["mode"], s["min_impact"], s["paused_until"])
              for s in json.loads(bot.cli("subscribers", "list", "--json").stdout)}
    assert listed == {"one@desk.example": ("daily", 9, "2026-12-24"),
                      "kept@desk.example": ("instant", 7, "2026-12-31"),
                      "four@desk.example": ("both", None, None)}


def test_what_add_sets_is_what_the_reader_then_gets(tmp_path: Path,
                                                    smtp: tuple[SmtpRecorder, int]) -> None:
    recorder, port = smtp
    bot = reader_and_two_stories(tmp_path, TOML, port)  # impact 8 and impact 9
    assert bot.cli("subscribers", "add", "ed@desk.example", "--tz", "Europe/London",
                   "--min-impact", "9").returncode == 0
    shown = bot.cli("preview", "--digest", "ed@desk.example", "--format", "text")
    assert "Budget line cut" in shown.stdout and "Hypersonic" not in shown.stdout, shown.stdout
    assert bot.cli("subscribers", "add", "ed@desk.example", "--tz", "Europe/London",
                   "--paused-until", "2099-01-01").returncode == 0
    sent = bot.cli("digest", "send", "--now")
    assert sent.returncode == 0, sent.stderr
    # Not paused, this plans one digest (the test above); paused, none and no email.
    assert sent.stdout.startswith("0 planned, 0 empty, 0 already, 0 sent"), sent.stdout
    assert recorder.messages == []
