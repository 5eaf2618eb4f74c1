"""`/actionitems open | mine | claimed | done` on a running `alertbot run`: each listed item with
its state and owner; `today`, `week` and words still list recent action items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot import db as database
from bot.rules.claims import Request, Verb
from bot.stories import actions
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_payloads import command, fake_slack, running_desk

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack())


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    def prepare(bot: Alertbot) -> None:
        engine = database.create(bot.env["DATABASE_URL"])
        presses = [("s-ana", Request(Verb.CLAIM, ANA)), ("s-bo", Request(Verb.CLAIM, BO)),
                   ("s-done", Request(Verb.CLAIM, BO)),
                   ("s-done", Request(Verb.DONE, BO, note="filed \"the\" follow-up"))]
        with engine.begin() as db:
            for n, (story_id, request) in enumerate(presses):
                key = actions.press_key(f"1.{n}", request.user, request.verb.value, story_id)
                actions.apply(db, story_id, request, NOW + timedelta(minutes=n), key)
        engine.dispose()

    yield from running_desk(tmp_path_factory.mktemp("states"), slack_server,
                            [story(id=f"s-{name}", title=f"Title {name}", impact=9)
                             for name in ("open", "ana", "bo", "done")], prepare)


def lines(response: httpx.Response) -> list[str]:
    """Each listed item's text; the header first."""
    assert response.status_code == 200, response.text
    return [b["text"]["text"] for b in response.json()["blocks"] if b["type"] == "section"]


def ask(bot: Alertbot, slack: FakeSlack, text: str, user: str = ANA) -> list[str]:
    return lines(command(bot, text, slack, name="/actionitems", user=user))


def test_mine_lists_what_the_asker_has_claimed(alertbot: Alertbot,
                                               slack_server: FakeSlack) -> None:
    header, item = ask(alertbot, slack_server, "mine")
    assert header == "*Action items you have claimed*"
    assert "Title ana" in item and "`/story s-ana`" in item
    assert item.endswith(f"Claimed by <@{ANA}> 09:00 UTC")
    assert ask(alertbot, slack_server, "mine", user="U0NOBODY")[0].startswith(
        "*Action items you have claimed*. You have claimed none")


def test_claimed_open_and_done_each_show_state_and_owner(alertbot: Alertbot,
                                                         slack_server: FakeSlack) -> None:
    _, bo, ana = ask(alertbot, slack_server, "claimed")  # newest claim first
    assert ("Title bo" in bo and f"Claimed by <@{BO}> 09:01" in bo
            and "Title ana" in ana and f"Claimed by <@{ANA}> 09:00" in ana)
    header, only = ask(alertbot, slack_server, "open")
    assert header == "*Open action items*"
    assert "Title open" in only and only.endswith("Open: nobody has it yet")
    _, done = ask(alertbot, slack_server, "DONE")
    assert "Title done" in done and done.endswith(f'Done by <@{BO}>: filed "the" follow-up')


def test_today_and_words_still_list_recent_action_items(alertbot: Alertbot,
                                                        slack_server: FakeSlack) -> None:
    assert ask(alertbot, slack_server, "today")[0] == "*4 action items in the last 24 hours*"
    found = ask(alertbot, slack_server, "title done")
    assert found[0].startswith("*1 action item in the last 30 days*")
