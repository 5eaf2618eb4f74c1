"""The pure decision over an action item's state: who may do what, and what it becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.rules.claims import Item, Reason, Request, State, Verb, decide, snooze_until

NOW = datetime(2026, 12, 1, 9, 12, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"


def test_claim_of_an_open_item_records_who_and_when() -> None:
    outcome = decide(Item(), Request(Verb.CLAIM, ANA), NOW)
    assert outcome.applied and outcome.code == "claimed"
    assert outcome.item == Item(State.CLAIMED, ANA, NOW)


def test_a_second_claim_by_another_person_is_refused_naming_the_holder() -> None:
    claimed = Item(State.CLAIMED, ANA, NOW)
    outcome = decide(claimed, Request(Verb.CLAIM, BO), NOW + timedelta(minutes=1))
    assert (outcome.applied, outcome.code, outcome.holder) == (False, "already_claimed", ANA)
    assert outcome.item is claimed  # unchanged


def test_claiming_twice_by_the_same_person_changes_nothing() -> None:
    claimed = Item(State.CLAIMED, ANA, NOW)
    outcome = decide(claimed, Request(Verb.CLAIM, ANA), NOW + timedelta(minutes=1))
    assert not outcome.applied and outcome.code == "already_yours" and outcome.item is claimed


def test_done_takes_a_note_from_open_or_claimed() -> None:
    for start in (Item(), Item(State.CLAIMED, ANA, NOW)):
        outcome = decide(start, Request(Verb.DONE, BO, note="filed follow-up"), NOW)
        assert outcome.item == Item(State.DONE, BO, NOW, "filed follow-up")
    again = decide(outcome.item, Request(Verb.DONE, ANA), NOW)
    assert (again.applied, again.code, again.holder) == (False, "already_done", BO)


def test_dismiss_from_any_state_keeps_the_reason_and_note() -> None:
    for start in (Item(), Item(State.CLAIMED, ANA, NOW), Item(State.DONE, ANA, NOW)):
        press = Request(Verb.DISMISS, BO, note="sports", reason=Reason.NOT_OUR_BEAT)
        outcome = decide(start, press, NOW)
        assert outcome.applied
        assert outcome.item == Item(State.DISMISSED, BO, NOW, "sports", Reason.NOT_OUR_BEAT)
    assert decide(outcome.item, Request(Verb.DISMISS, ANA), NOW).code == "already_dismissed"


def test_reopen_returns_done_or_dismissed_to_open_and_nobody() -> None:
    for start in (Item(State.DONE, ANA, NOW), Item(State.DISMISSED, BO, NOW, None, Reason.OTHER)):
        outcome = decide(start, Request(Verb.REOPEN, ANA), NOW)
        assert outcome.applied and outcome.item == Item()
    assert decide(Item(), Request(Verb.REOPEN, ANA), NOW).code == "already_open"


def test_snooze_sets_its_end_and_a_claim_ends_it() -> None:
    until = NOW + timedelta(hours=1)
    snoozed = decide(Item(), Request(Verb.SNOOZE, ANA, until=until), NOW).item
    assert snoozed.state is State.OPEN and snoozed.snoozed_until == until
    assert decide(snoozed, Request(Verb.CLAIM, BO), NOW).item.snoozed_until is None
    assert decide(Item(), Request(Verb.SNOOZE, ANA, until=NOW), NOW).code == "snooze_in_the_past"
    done = Item(State.DONE, ANA, NOW)
    assert not decide(done, Request(Verb.SNOOZE, ANA, until=until), NOW).applied


def test_actions_allowed_limits_to_listed_users_or_groups() -> None:
    press = Request(Verb.CLAIM, BO)
    assert decide(Item(), press, NOW, allowed=None).applied  # absent: anyone
    assert decide(Item(), press, NOW, allowed=[ANA]).code == "not_allowed"
    assert decide(Item(), press, NOW, allowed=[]).code == "not_allowed"  # empty: nobody
    in_group = Request(Verb.CLAIM, BO, groups=frozenset({"S0DESK"}))
    assert decide(Item(), in_group, NOW, allowed=["S0DESK"]).applied


@pytest.mark.parametrize(("choice", "zone", "expected"), [
    ("1h", "UTC", datetime(2026, 12, 1, 10, 12, tzinfo=UTC)),
    ("4h", "UTC", datetime(2026, 12, 1, 13, 12, tzinfo=UTC)),
    # 09:12 UTC is 10:12 in Berlin: tomorrow 08:00 there is 07:00 UTC.
    ("tomorrow", "Europe/Berlin", datetime(2026, 12, 2, 7, 0, tzinfo=UTC)),
    # 09:12 UTC is 20:12 on 1 December in Sydney (UTC+11): 08:00 on the 2nd there is 21:00 UTC
    # on the 1st, not a day later.
    ("tomorrow", "Australia/Sydney", datetime(2026, 12, 1, 21, 0, tzinfo=UTC)),
])
def test_snooze_choices_in_the_persons_zone(choice: str, zone: str, expected: datetime) -> None:
    assert snooze_until(choice, NOW, zone) == expected


def test_tomorrow_morning_across_a_dst_change_is_0800_on_the_wall_clock() -> None:
    # 28 March 2026 evening in Berlin (UTC+1); the clocks go forward that night.
    evening = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert snooze_until("tomorrow", evening, "Europe/Berlin") == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC)
