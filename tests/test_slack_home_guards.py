"""The "My alerts" door's guards on a running `alertbot run`: the event is acked before Slack
is asked anything, and the email form saves only for the person's current Slack address."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_home_payloads import (
    email_form,
    open_home,
    opened_modal,
    press,
    publishes,
    shown,
    stored_reader,
    submit,
    text,
    wait_publishes,
)
from tests.slack_payloads import fake_slack, running_desk

ELI, EMAIL, NEW_EMAIL, FAY = "U0ELI", "eli@desk.example", "eli.new@desk.example", "U0FAY"


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack(people={ELI: {"tz": "Asia/Tokyo", "email": EMAIL}}))


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    def prepare(bot: Alertbot) -> None:
        assert bot.cli("subscribers", "add", EMAIL, "--mode", "daily", "--tz", "Asia/Tokyo",
                       "--digest-hour", "07:00").returncode == 0

    yield from running_desk(tmp_path_factory.mktemp("homeguards"), slack_server, [], prepare)


def test_the_event_is_acked_before_slack_is_asked_for_the_profile(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    slack_server.pause("users.info")  # held unanswered until resumed
    try:
        started = time.monotonic()
        open_home(alertbot, FAY)  # asserts an empty 200
        acked = time.monotonic() - started
        assert acked < 3.0, f"acked after {acked:.2f} s"
        assert publishes(slack_server, FAY) == []  # the tab waits for the profile
    finally:
        slack_server.resume("users.info")
    said = text(shown(wait_publishes(slack_server, FAY, 1)))
    assert "Your Slack time zone: America/New_York." in said


def test_the_email_form_saves_nothing_once_the_slack_address_changed(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    press(alertbot, ELI, "home_edit_email", EMAIL)
    modal = opened_modal(slack_server, ELI)
    assert modal["private_metadata"] == EMAIL
    slack_server.people[ELI] = {"tz": "Asia/Tokyo", "email": NEW_EMAIL}  # changed meanwhile
    ack = submit(alertbot, ELI, modal, email_form(mode="instant"))
    assert ack.status_code == 200 and ack.content == b""  # the form itself was good
    # Opening the tab afterwards is answered after the submission's own users.info.
    open_home(alertbot, ELI)
    said = text(shown(wait_publishes(slack_server, ELI, 1)))
    assert f"{NEW_EMAIL} gets no email alerts" in said
    reader = stored_reader(alertbot, EMAIL)
    assert reader is not None and (reader.email, reader.mode) == (EMAIL, "daily")
    assert len(publishes(slack_server, ELI)) == 1  # the refused save published nothing
