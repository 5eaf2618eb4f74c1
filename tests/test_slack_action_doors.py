"""The action-item doors on a running `alertbot run`, pressed as Slack sends them: Done's modal
and its note, a batch item's menu, a story id of 200 characters, and the history `/story` and
`alertbot story` show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bot.messages.kinds import KINDS
from bot.messages.render import Item
from bot.settings import CommandNames
from bot.stories.model import Story
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_payloads import (
    alerts,
    command,
    fake_slack,
    post,
    posted_ts,
    press_item,
    presses,
    push,
    running_desk,
    submit_done,
    thread,
    updates,
)
from tests.test_render_digest import check_block_kit

LONG = "long-" + "x" * 195  # a story id as long as one may be: 200 characters
ANA = "U0ANA"


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack())


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    yield from running_desk(tmp_path_factory.mktemp("doors"), slack_server,
                            [story(id=LONG, title="A story with a long id", impact=9),
                             story(id="history-story", title="Its history", impact=9)])


def views_opened(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.calls if c.method == "views.open"]


def opened_after(slack: FakeSlack, seen: int) -> dict[str, Any]:
    """The view of the next views.open after the `seen` ones already made."""
    slack.wait_for(lambda: len(views_opened(slack)) > seen, 10, lambda: "no views.open")
    call = views_opened(slack)[seen]
    assert call.body["trigger_id"] == "1.2.3"  # the press's own, used within its 3 s
    view = call.body["view"]
    return dict(json.loads(view) if isinstance(view, str) else view)


def test_done_opens_a_modal_whose_note_is_shown_in_the_edit_and_thread_once(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    assert alerts(alertbot, slack_server, "subscribe doneness", channel="C0DONE").startswith(
        "Subscribed")
    push(alertbot, "done-story", topics=["doneness"], impact=9)
    slack_server.wait_for(lambda: bool(slack_server.posts("C0DONE")), 10, lambda: "not posted")
    ts = posted_ts(alertbot, "C0DONE")
    [posted] = slack_server.posts("C0DONE")
    [controls] = [b for b in posted.body["blocks"] if b["type"] == "actions"]
    [done] = [e for e in controls["elements"] if e.get("action_id") == "item_done"]
    seen = len(views_opened(slack_server))
    path = press_item(alertbot, slack_server, {**done, "block_id": controls["block_id"]}, ANA,
                      "2100.1")
    view = opened_after(slack_server, seen)
    assert (view["callback_id"], view["private_metadata"]) == (
        "item_done", f"done-story\n{slack_server.url}{path}")
    [note] = [b for b in view["blocks"] if b.get("block_id") == "note"]
    assert note["optional"] is True and note["element"]["action_id"] == "note"

    for _ in range(2):  # Slack delivers the submission twice: stored and shown once
        submit_done(alertbot, "done-story", ANA, "V0DONENOTE", note="filed follow-up",
                    name="ana.lima")
    says = f"Done by <@{ANA}>: filed follow-up"
    slack_server.wait_for(lambda: bool(updates(slack_server, ts)) and bool(
        thread(slack_server, ts)), 10, lambda: "the message was not edited")
    assert says in json.dumps(updates(slack_server, ts)[0].body["blocks"])
    assert thread(slack_server, ts)[0].body["text"] == f":white_check_mark: {says}"
    # Done, the message offers Re-open in place of Claim, Done, Snooze and Not relevant.
    assert control_ids(updates(slack_server, ts)[0].body) == ["item_reopen", "key_facts",
                                                              "open_story"]
    rows = presses(alertbot, "done-story", lambda found: len(found) >= 1)
    assert [(r.user, r.name, r.action, r.outcome, r.note) for r in rows] == [
        (ANA, "ana.lima", "done", "done", "filed follow-up")]
    # Bo's form, opened before he saw the edit, is refused: told to him, and nothing changes.
    bo = press_item(alertbot, slack_server, {**done, "block_id": controls["block_id"]}, "U0BO",
                    "2100.3")
    bo_view = opened_after(slack_server, seen + 1)
    late = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
            "api_app_id": "A1", "token": "x", "trigger_id": "1.2.8",
            "view": {**bo_view, "id": "V0BOLATE", "state": {"values": {}}}}
    assert post(alertbot, {"payload": json.dumps(late)}).status_code == 200
    refused = slack_server.wait_for_call(bo, timeout=10).body
    assert (refused["text"], refused["response_type"]) == (
        f"Already done by <@{ANA}>.", "ephemeral")
    # Re-opened, it is edited a second time, not a third: the replay changed nothing.
    reopen = {"type": "button", "action_id": "item_reopen", "value": "done-story",
              "block_id": controls["block_id"]}
    press_item(alertbot, slack_server, reopen, ANA, "2100.2")
    slack_server.wait_for(lambda: len(updates(slack_server, ts)) >= 2
                          and len(thread(slack_server, ts)) >= 2, 10, lambda: "no edit")
    assert len(updates(slack_server, ts)) == len(thread(slack_server, ts)) == 2
    assert "Open again: nobody has it" in thread(slack_server, ts)[1].body["text"]
    assert control_ids(updates(slack_server, ts)[1].body)[:4] == [
        "item_claim", "item_done", "item_snooze", "item_dismiss"]


def control_ids(message: dict[str, Any]) -> list[str]:
    """The action ids of a posted or edited alert's controls, in order."""
    [controls] = [b for b in message["blocks"] if b["type"] == "actions"]
    return [e["action_id"] for e in controls["elements"]]


def test_a_done_or_dismissed_batch_item_offers_only_re_open() -> None:
    done, other = (Item(Story.model_validate(story(id=i)), "why") for i in ("done-1", "open-1"))
    done = replace(done, owner={"state": "done", "by": ANA, "says": "Done by <@U0ANA>"})
    batch = KINDS["batch"].slack([done, other], "C0X", CommandNames())
    menus = {b["block_id"]: [o["value"] for o in b["accessory"]["options"]]
             for b in batch["blocks"] if b.get("accessory", {}).get("action_id") == "item_menu"}
    assert menus == {"item:done-1": ["reopen"],
                     "item:open-1": ["claim", "done", "snooze:1h", "snooze:4h",
                                     "snooze:tomorrow", "dismiss"]}


def test_a_200_character_story_id_fits_every_control_and_each_works(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    long_story = Story.model_validate(story(id=LONG, title="A story with a long id"))
    others = [Item(Story.model_validate(story(id=f"other-{n}")), "why") for n in range(3)]
    alert = KINDS["alert"].slack([Item(long_story, "why")], "C0X", CommandNames())
    batch = KINDS["batch"].slack([Item(long_story, "why"), *others], "C0X", CommandNames())
    for message in (alert, batch):
        # slack_sdk's own limits: an option's value ≤ 150 characters, a block id ≤ 255.
        check_block_kit(message)
    [section] = [b for b in batch["blocks"] if b.get("block_id") == f"item:{LONG}"]
    menu = section["accessory"]
    assert [o["value"] for o in menu["options"]] == [
        "claim", "done", "snooze:1h", "snooze:4h", "snooze:tomorrow", "dismiss"]

    def choose(value: str, at: str) -> None:
        [option] = [o for o in menu["options"] if o["value"] == value]
        press_item(alertbot, slack_server, {"type": "static_select",
                                            "action_id": menu["action_id"],
                                            "block_id": section["block_id"],
                                            "selected_option": option}, ANA, at)

    choose("claim", "2200.1")
    choose("snooze:4h", "2200.2")
    rows = presses(alertbot, LONG, lambda found: len(found) >= 2)
    assert [(r.action, r.outcome) for r in rows] == [("claim", "claimed"), ("snooze", "snoozed")]
    for value, callback in (("done", "item_done"), ("dismiss", "item_dismiss")):
        seen = len(views_opened(slack_server))
        choose(value, f"2200.{value}")
        view = opened_after(slack_server, seen)
        assert view["callback_id"] == callback
        assert view["private_metadata"].split("\n")[0] == LONG
    # The alert's own snooze select, whose options say only the choice.
    [controls] = [b for b in alert["blocks"] if b["type"] == "actions"]
    [snooze] = [e for e in controls["elements"] if e.get("action_id") == "item_snooze"]
    press_item(alertbot, slack_server, {**snooze, "block_id": controls["block_id"],
                                        "selected_option": snooze["options"][0]}, "U0BO",
               "2200.3")
    rows = presses(alertbot, LONG, lambda found: len(found) >= 3)
    assert [(r.user, r.action, r.outcome) for r in rows[2:]] == [("U0BO", "snooze", "snoozed")]
    # Done through its form, the item's menu offers Re-open, and choosing it re-opens it.
    submit_done(alertbot, LONG, ANA, "V0LONGDONE")
    presses(alertbot, LONG, lambda found: len(found) >= 4)
    finished = replace(Item(long_story, "why"), owner={"state": "done", "by": ANA, "says": ""})
    [section] = [b for b in KINDS["batch"].slack([finished, *others], "C0X", CommandNames())[
        "blocks"] if b.get("block_id") == f"item:{LONG}"]
    menu = section["accessory"]
    choose("reopen", "2200.4")
    rows = presses(alertbot, LONG, lambda found: len(found) >= 5)
    assert [(r.action, r.outcome) for r in rows[3:]] == [("done", "done"), ("reopen", "reopened")]


def sections(message: dict[str, Any]) -> list[str]:
    """The text of each section that has one (the facts' fields section has none)."""
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]


def test_story_shows_the_items_state_and_who_did_what_in_slack_and_the_terminal(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    claim = {"type": "button", "action_id": "item_claim", "value": "history-story",
             "block_id": "item:history-story"}
    press_item(alertbot, slack_server, claim, "U0BO", "2300.1")
    presses(alertbot, "history-story", lambda found: len(found) >= 1)
    submit_done(alertbot, "history-story", "U0BO", "V0HISTORY", note="<!here> filed it",
                name="bo.reyes")
    rows = presses(alertbot, "history-story", lambda found: len(found) >= 2)
    assert [r.outcome for r in rows] == ["claimed", "done"]

    answer = command(alertbot, "history-story", slack_server)
    [item] = [t for t in sections(answer.json()) if t.startswith("*Action item*")]
    lines = item.split("\n")
    assert lines[1] == ":white_check_mark: Done by <@U0BO>: &lt;!here&gt; filed it"
    assert lines[2].endswith(" UTC · <@U0BO> claimed it")
    assert lines[3].endswith(" UTC · <@U0BO> marked it done: &lt;!here&gt; filed it")

    shown = alertbot.cli("story", "history-story").stdout
    assert "Action item: done by bo.reyes (U0BO) at " in shown
    assert shown.rstrip().endswith("bo.reyes (U0BO): done: <!here> filed it")
    assert " U0BO: claimed\n" in shown  # that press came without a name: the ID alone
    # What a daily digest would say of it, as `alertbot preview` shows the email.
    assert alertbot.cli("subscribers", "add", "ed@desk.example", "--mode", "daily"
                        ).returncode == 0
    preview = alertbot.cli("preview", "--digest", "ed@desk.example", "--format", "text")
    assert "   Done by bo.reyes: <!here> filed it\n" in preview.stdout, preview.stderr


def test_story_of_an_item_nobody_acted_on_says_it_is_open(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    push(alertbot, "untouched-story", impact=9)
    answer = command(alertbot, "untouched-story", slack_server)
    assert "*Action item*\nOpen: nobody has it yet" in sections(answer.json())
    assert "Action item: open, nobody has it" in alertbot.cli("story", "untouched-story").stdout


def test_a_forged_menu_choice_is_answered_and_stores_nothing(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    before = len(presses(alertbot, "untouched-story", lambda found: True))
    forged = {"type": "static_select", "action_id": "item_menu",
              "block_id": "item:untouched-story", "selected_option": {"value": "snooze:ever"}}
    path = press_item(alertbot, slack_server, forged, ANA, "2400.1")
    said = slack_server.wait_for_call(path, timeout=10).body
    assert said["text"].startswith("Sorry, alertbot could not answer that just now.")
    assert len(presses(alertbot, "untouched-story", lambda found: True)) == before

