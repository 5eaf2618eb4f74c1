"""Secrets: read from files (`NAME_FILE`); never in a log line, an error, `config check` or
`/metrics`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder, free_port, slack_signature
from tests.process import Alertbot

TOML = '[slack]\npacing = "0s"\nbatch_window = "0s"\n[[slack.routes]]\nchannel = "C0SPACEOPS"\n'
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token-7c1f",
    "SLACK_SIGNING_SECRET": "secret-signing-9d2e",
    "SMTP_PASSWORD": "secret-smtp-password-4b8a",
    "ALERTBOT_INGEST_TOKEN": "secret-ingest-token-1e5c",
    "ALERTBOT_SECRET_KEY": "secret-hmac-key-6f3d",
}


def test_secrets_can_come_from_files_and_are_used(tmp_path: Path, slack: FakeSlack) -> None:
    token = tmp_path / "slack_bot_token"
    token.write_text("xoxb-from-a-file\n")  # as `echo … > file` writes it
    bot = Alertbot.make(tmp_path, TOML, slack_url=slack.url)
    del bot.env["SLACK_BOT_TOKEN"]
    bot.env["SLACK_BOT_TOKEN_FILE"] = str(token)
    shown = json.loads(bot.cli("config", "check").stdout)["settings"]
    assert shown["slack_bot_token"] == "**********"
    assert bot.cli("test", "slack", "C0SPACEOPS").returncode == 0
    [call] = slack.posts("C0SPACEOPS")
    assert call.headers["Authorization"] == "Bearer xoxb-from-a-file"


def test_a_secret_file_that_cannot_be_read_or_doubles_a_variable_stops_start_up(
    tmp_path: Path,
) -> None:
    bot = Alertbot.make(tmp_path, TOML)
    bot.env["SMTP_PASSWORD_FILE"] = str(tmp_path / "missing")
    missing = bot.cli("config", "check")
    assert missing.returncode == 1
    assert f"SMTP_PASSWORD_FILE: cannot read {tmp_path / 'missing'}" in missing.stderr
    (tmp_path / "token").write_text("from-file")
    bot.env.update(ALERTBOT_INGEST_TOKEN_FILE=str(tmp_path / "token"), SMTP_PASSWORD_FILE="")
    both = bot.cli("config", "check")
    assert both.returncode == 1
    assert "both ALERTBOT_INGEST_TOKEN and ALERTBOT_INGEST_TOKEN_FILE are set" in both.stderr


def test_no_secret_reaches_a_log_line_an_error_or_config_check(
    tmp_path: Path, slack: FakeSlack, smtp: tuple[SmtpRecorder, int],
) -> None:
    _, smtp_port = smtp  # offers no AUTH: the login fails, with the password in hand
    database_password = "secret-db-password-2a9b"
    bot = Alertbot.make(tmp_path, TOML, slack_url=slack.url, SMTP_HOST="127.0.0.1",
                        SMTP_PORT=str(smtp_port), SMTP_SECURITY="none",
                        SMTP_USERNAME="alertbot", **SECRETS)
    bot.env.update(SECRETS)
    outputs = [bot.cli("config", "check").stdout]
    assert "**********" in outputs[0]

    # PostgreSQL that is not there: the error names the problem, not the password.
    elsewhere = bot.env["DATABASE_URL"]
    bot.env["DATABASE_URL"] = (f"postgresql://alertbot:{database_password}@127.0.0.1:"
                               f"{free_port()}/alertbot")
    for args in (("config", "check"), ("check",), ("--debug", "deliveries", "list")):
        result = bot.cli(*args)
        outputs += [result.stdout, result.stderr]
    assert "postgresql://alertbot:***@127.0.0.1" in outputs[-6]
    bot.env["DATABASE_URL"] = elsewhere

    # The service at work, failing where a secret is in hand: Slack refuses the token, the
    # relay refuses the login, pushes and Slack requests come with wrong credentials.
    assert bot.cli("subscribers", "add", "ed@desk.example", "--mode", "instant").returncode == 0
    slack.fail_next("chat.postMessage", error="invalid_auth")
    bot.start()
    try:
        assert bot.push([story(id="s1")], token=SECRETS["ALERTBOT_INGEST_TOKEN"]
                        ).status_code == 202
        assert bot.push([story(id="s2")], token="wrong").status_code == 401
        body = "command=%2Fstory&text=s1"
        forged = httpx.post(f"{bot.url}/slack/events", content=body, headers={
            "X-Slack-Request-Timestamp": "1", "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Signature": slack_signature("not-the-secret", "1", body)})
        assert forged.status_code == 401
        slack.wait_for_call("chat.postMessage")
        outputs.append(httpx.get(f"{bot.url}/metrics").text)
        assert "alertbot_stories_ingested_total" in outputs[-1]
    finally:
        bot.stop()
    listed = bot.cli("deliveries", "list", "--json")
    outputs += [listed.stdout, listed.stderr, bot.log()]
    errors = [row["last_error"] or "" for row in json.loads(listed.stdout)]
    assert any("invalid_auth" in e for e in errors) and any("SMTP" in e for e in errors)

    everything = "\n".join(outputs)
    for name, value in [*SECRETS.items(), ("database password", database_password)]:
        assert value not in everything, f"{name} leaked"
