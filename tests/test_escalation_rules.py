"""The pure escalation decisions (bot/rules/escalation.py) and the settings that feed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.rules.claims import Item, State
from bot.rules.escalation import Policy, Quiet, moved, plan, quiet_end, still_applies
from bot.rules.targets import slack_targets
from bot.settings import ConfigError
from tests.test_settings_as_written import desk_from

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
POLICY = Policy(timedelta(minutes=15), 9, ("S0ONCALL", "U0ANA"), repeat=1)
NO_QUIET = Quiet()


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_an_item_at_the_impact_escalates_after_the_delay_and_below_it_never() -> None:
    [first] = plan(POLICY, 9, T0, NO_QUIET).rounds
    assert (first.number, first.due) == (1, minutes(15))
    assert "open 0:15:00 after its alert" in first.reason
    below = plan(POLICY, 8.9, T0, NO_QUIET)
    assert below.rounds == () and below.reason == "impact 8.9 < 9: not escalated"
    assert plan(None, 10, T0, NO_QUIET).reason == "the route does not escalate"


def test_repeat_makes_rounds_the_delay_apart_and_zero_delay_is_at_once() -> None:
    rounds = plan(Policy(timedelta(minutes=15), 9, ("U0ANA",), 3), 9, T0, NO_QUIET).rounds
    assert [(r.number, r.due) for r in rounds] == [(1, minutes(15)), (2, minutes(30)),
                                                   (3, minutes(45))]
    [now] = plan(Policy(timedelta(0), 9, ("U0ANA",)), 9, T0, NO_QUIET).rounds
    assert now.due == T0


def test_an_item_acted_on_before_planning_is_not_escalated_and_a_snoozed_one_waits() -> None:
    claimed = Item(State.CLAIMED, "U0ANA", T0)
    assert plan(POLICY, 9, T0, NO_QUIET, claimed).reason == "already claimed by U0ANA"
    snoozed = Item(snoozed_until=minutes(65))
    [after] = plan(POLICY, 9, T0, NO_QUIET, snoozed).rounds
    assert after.due == minutes(65) and "end of its snooze" in after.reason


def test_quiet_hours_hold_a_round_to_their_end_unless_the_impact_breaks_through() -> None:
    quiet = Quiet("10:10-11:00", "UTC", break_through=10)
    [held] = plan(POLICY, 9, T0, quiet).rounds
    assert held.due == minutes(60) and "held by quiet hours until 11:00 UTC" in held.reason
    [urgent] = plan(POLICY, 10, T0, quiet).rounds
    assert urgent.due == minutes(15) and "breaks through" in urgent.reason


def test_quiet_end_is_on_the_routes_wall_clock_across_midnight() -> None:
    # 23:30 in Berlin (UTC+1 in December): quiet 22:00-07:00 ends at 07:00 there, 06:00 UTC.
    late = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    assert quiet_end(late, "22:00-07:00", "Europe/Berlin") == datetime(2026, 12, 2, 6, 0,
                                                                      tzinfo=UTC)


def test_a_snooze_moves_the_pending_rounds_to_its_end() -> None:
    policy = Policy(timedelta(minutes=15), 9, ("U0ANA",), 3)
    rounds = moved(policy, 9, minutes(65), NO_QUIET, [3, 2])
    assert [(r.number, r.due) for r in rounds] == [(2, minutes(65)), (3, minutes(80))]


def test_at_send_time_a_claim_cancels_and_a_snooze_holds() -> None:
    assert still_applies(Item(), minutes(15)).send
    done = still_applies(Item(State.DONE, "U0BO", T0), minutes(15))
    assert (done.send, done.reason, done.until) == (False, "done by U0BO", None)
    snoozed = still_applies(Item(snoozed_until=minutes(65)), minutes(15))
    assert (snoozed.send, snoozed.until) == (False, minutes(65))
    assert still_applies(Item(snoozed_until=minutes(10)), minutes(15)).send  # it has ended
    lower = still_applies(Item(), minutes(15), impact=8.5, at_least=9)
    assert (lower.send, lower.reason) == (False, "re-scored to impact 8.5 < 9")
    assert still_applies(Item(), minutes(15), impact=9, at_least=9).send


ROUTE = '[[slack.routes]]\nchannel = "C0ROUTE"\n'


def test_route_settings_reach_the_target_as_written(tmp_path: Path) -> None:
    desk = desk_from(tmp_path, ROUTE + 'escalate_after = "0s"\nescalate_impact = 10\n'
                     'escalate_to = ["S0ONCALL", "U0ANA", "C0DUTY"]\nescalate_repeat = 2\n')
    [target] = slack_targets(desk)
    assert target.escalation == Policy(timedelta(0), 10, ("S0ONCALL", "U0ANA", "C0DUTY"), 2)
    [plain] = slack_targets(desk_from(tmp_path, ROUTE + "escalate_to = []\n"))
    assert plain.escalation is None  # no escalate_after: the route does not escalate


@pytest.mark.parametrize(("written", "error"), [
    ('escalate_after = "15m"\n', r"slack\.routes\.0: escalate_after is set but escalate_to "
                                 r"names nobody"),
    ('escalate_after = "15m"\nescalate_to = []\n', r"escalate_to names nobody"),
    ('escalate_after = "15m"\nescalate_to = ["U0ANA", "@oncall"]\n',
     r"slack\.routes\.0\.escalate_to: '@oncall' is not a Slack user \(U…, W…\), user-group"),
    ('escalate_repeat = 0\n', r"slack\.routes\.0\.escalate_repeat: Input should be greater"),
    ('escalate_after = "soon"\nescalate_to = ["U0ANA"]\n',
     r"slack\.routes\.0\.escalate_after: 'soon' is not a duration"),
])
def test_a_bad_escalation_setting_is_refused_by_name(tmp_path: Path, written: str,
                                                     error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        desk_from(tmp_path, ROUTE + written)
