"""The action-item buttons on a running `alertbot run`, pressed as Slack sends them: who holds
an item, Not relevant's modal, and every posted message edited once per change of owner.
(Done's modal, a batch item's menu and `/story`'s history: test_slack_action_doors.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_payloads import (
    alerts,
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


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack())


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    stories = [story(id="hypersonic-budget", title="Hypersonic budget line trimmed", impact=7),
               story(id="pacific-range", title="Pacific test range gets new radar", impact=6)]
    yield from running_desk(tmp_path_factory.mktemp("claims"), slack_server, stories)


def claim(story_id: str) -> dict[str, Any]:
    return {"type": "button", "action_id": "item_claim", "value": story_id}


def test_a_second_claim_by_another_person_is_told_who_holds_it_and_a_replay_is_silent(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    first = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.1")
    # Her second, separate press (a new action_ts) is refused once the first is stored: the
    # event to await before Bo presses (lazy halves may otherwise run in either order).
    hers = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.15")
    assert slack_server.wait_for_call(hers, timeout=10).body["text"] == (
        "You have already claimed this.")
    second = press_item(alertbot, slack_server, claim("pacific-range"), "U0BO", "1700.2")
    # Ana's press was delivered first; Bo's is refused naming her.
    refused = slack_server.wait_for_call(second, timeout=10)
    assert refused.body["text"] == "Already claimed by <@U0ANA>."
    assert refused.body["response_type"] == "ephemeral"
    replayed = press_item(alertbot, slack_server, claim("pacific-range"), "U0ANA", "1700.1")
    submit_done(alertbot, "pacific-range", "U0ANA", "V0PACIFIC")
    again = press_item(alertbot, slack_server, claim("pacific-range"), "U0BO", "1700.4")
    assert slack_server.wait_for_call(again, timeout=10).body["text"] == (
        "Already done by <@U0ANA>.")
    # Ana's press, its replay and her Done said nothing to her: a press that applies or repeats
    # is silent (a replay applied again would have answered "You have already claimed this.").
    assert [c for c in slack_server.calls if c.method in (first, replayed)] == []


def test_not_relevant_opens_a_modal_whose_submission_records_the_dismissal(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    path = press_item(alertbot, slack_server, {"type": "button", "action_id": "item_dismiss",
                                                "value": "hypersonic-budget"}, "U0BO", "1800.1")
    opened = slack_server.wait_for_call("views.open", timeout=10)
    view = opened.body["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert opened.body["trigger_id"] == "1.2.3"
    # The story, and where a refused submission is answered: the press's response_url.
    assert (view["callback_id"], view["private_metadata"]) == (
        "item_dismiss", f"hypersonic-budget\n{slack_server.url}{path}")
    reasons = view["blocks"][1]["element"]["options"]
    assert [o["value"] for o in reasons] == ["wrong_impact", "not_our_beat", "duplicate", "other"]

    submission = {
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.4",
        "view": {**view, "id": "V0DISMISS1", "state": {"values": {
            "reason": {"reason": {"type": "radio_buttons",
                                  "selected_option": {"value": "not_our_beat"}}},
            "note": {"note": {"type": "plain_text_input", "value": "sports desk's"}}}}}}
    for _ in range(2):  # delivered twice: recorded once
        ack = post(alertbot, {"payload": json.dumps(submission)})
        assert ack.status_code == 200 and ack.content == b""  # an empty ack closes the modal
    # No message shows the dismissal yet, so the audit rows are the event to wait for.
    rows = presses(alertbot, "hypersonic-budget", lambda found: len(found) >= 1)
    assert [(r.user, r.action, r.outcome, r.reason, r.note) for r in rows] == [
        ("U0BO", "dismiss", "dismissed", "not_our_beat", "sports desk's")]
    refused = press_item(alertbot, slack_server,
                         {"type": "button", "action_id": "item_claim",
                          "value": "hypersonic-budget"}, "U0ANA", "1800.2")
    assert slack_server.wait_for_call(refused, timeout=10).body["text"] == (
        "Already dismissed by <@U0BO>.")


def test_each_posted_message_shows_who_owns_the_item_once_per_change(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    for channel in ("C0OWNA", "C0OWNB"):
        assert alerts(alertbot, slack_server, "subscribe ownership", channel=channel).startswith(
            "Subscribed")
    push(alertbot, "owned-story", topics=["ownership"], impact=9)
    slack_server.wait_for(lambda: all(slack_server.posts(c) for c in ("C0OWNA", "C0OWNB")),
                          10, lambda: "not posted to both channels")
    # The fake answers each post with a ts of its own; the outbox keeps it as the message's id.
    ts = {c: posted_ts(alertbot, c) for c in ("C0OWNA", "C0OWNB")}
    assert len(set(ts.values())) == 2

    def shown_everywhere(count: int, says: str) -> None:
        slack_server.wait_for(
            lambda: all(len(updates(slack_server, t)) >= count
                        and len(thread(slack_server, t)) >= count for t in ts.values()),
            10, lambda: f"not every message edited {count} times")
        for channel, t in ts.items():
            edits, replies = updates(slack_server, t), thread(slack_server, t)
            assert (len(edits), len(replies)) == (count, count)
            assert edits[-1].body["channel"] == channel
            edited = json.dumps(edits[-1].body["blocks"], ensure_ascii=False)
            assert says in edited and "Title of owned-story" in edited and "9/10" in edited
            assert says in replies[-1].body["text"]

    owned = {"type": "button", "action_id": "item_claim", "value": "owned-story"}
    press_item(alertbot, slack_server, owned, "U0ANA", "1900.1")
    shown_everywhere(1, "Claimed by <@U0ANA>")
    bo = press_item(alertbot, slack_server, owned, "U0BO", "1900.2")
    assert slack_server.wait_for_call(bo, timeout=10).body["text"] == (
        "Already claimed by <@U0ANA>.")
    press_item(alertbot, slack_server, owned, "U0ANA", "1900.1")  # Slack's retry of Ana's
    submit_done(alertbot, "owned-story", "U0ANA", "V0OWNDONE")
    # Two edits each, not three: neither Bo's refused claim nor the replay edited anything.
    shown_everywhere(2, "Done by <@U0ANA>")
    submission = {
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U0BO"},
        "api_app_id": "A1", "token": "x", "trigger_id": "1.2.5",
        "view": {"id": "V0OWNED", "callback_id": "item_dismiss", "type": "modal",
                 "private_metadata": "owned-story", "state": {"values": {
                     "reason": {"reason": {"type": "radio_buttons",
                                           "selected_option": {"value": "not_our_beat"}}},
                     "note": {"note": {"type": "plain_text_input", "value": "<!channel> sport"}},
                 }}}}
    assert post(alertbot, {"payload": json.dumps(submission)}).status_code == 200
    # The note is the person's text: escaped, so it pings nobody.
    shown_everywhere(3, "Dismissed by <@U0BO>: not our beat — &lt;!channel&gt; sport")
    reopen = {"type": "button", "action_id": "item_reopen", "value": "owned-story"}
    press_item(alertbot, slack_server, reopen, "U0BO", "1900.4")
    shown_everywhere(4, "Open again: nobody has it")
    snooze = {"type": "static_select", "action_id": "item_snooze",
              "selected_option": {"value": "1h:owned-story"}}
    press_item(alertbot, slack_server, snooze, "U0ANA", "1900.5")
    shown_everywhere(5, ":zzz: Snoozed until ")


def test_a_rescored_story_keeps_showing_its_owner_when_its_message_is_edited(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    assert alerts(alertbot, slack_server, "subscribe rescored",
                  channel="C0RESC").startswith("Subscribed")
    push(alertbot, "rescored-story", topics=["rescored"], impact=9, version=1)
    slack_server.wait_for(lambda: bool(slack_server.posts("C0RESC")), 10, lambda: "not posted")
    ts = posted_ts(alertbot, "C0RESC")
    claim = {"type": "button", "action_id": "item_claim", "value": "rescored-story"}
    press_item(alertbot, slack_server, claim, "U0ANA", "1950.1")
    slack_server.wait_for(lambda: len(updates(slack_server, ts)) == 1, 10, lambda: "no edit")
    # A channel that subscribes after the claim gets the re-scored story as a new alert.
    assert alerts(alertbot, slack_server, "subscribe rescored",
                  channel="C0LATE").startswith("Subscribed")
    # A re-score edits the message again: its figures change, and its owner stays shown.
    push(alertbot, "rescored-story", topics=["rescored"], impact=10, version=2)
    slack_server.wait_for(lambda: len(updates(slack_server, ts)) == 2, 10,
                          lambda: "the re-score did not edit the message")
    edited = json.dumps(updates(slack_server, ts)[-1].body["blocks"], ensure_ascii=False)
    assert "10/10" in edited
    assert "Claimed by <@U0ANA>" in edited
    # The new alert, read in its claim with the item's state, shows who has it too.
    slack_server.wait_for(lambda: bool(slack_server.posts("C0LATE")), 10,
                          lambda: "the late channel got no alert")
    [late] = slack_server.posts("C0LATE")
    fresh = json.dumps(late.body["blocks"], ensure_ascii=False)
    assert "10/10" in fresh and "Claimed by <@U0ANA>" in fresh
