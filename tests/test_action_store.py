"""Action items as stored: one state per story, every press audited once, on SQLite and
on a real PostgreSQL (concurrent identical presses change the state once)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from bot import db as database
from bot.db.schema import ACTION_EVENTS, STORIES
from bot.rules.claims import Item, Reason, Request, State, Verb
from bot.stories import actions

NOW = datetime(2026, 12, 1, 9, 12, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"


@pytest.fixture
def engine(database_url: str) -> Engine:
    return database.create(database_url)


def press(engine: Engine, request: Request, ts: str, story: str = "s1",
          now: datetime = NOW) -> actions.Applied:
    key = actions.press_key(ts, request.user, request.verb.value, story)
    with engine.begin() as db:
        return actions.apply(db, story, request, now, key)


def test_claim_done_dismiss_reopen_are_stored_with_an_audit_row_each(engine: Engine) -> None:
    assert press(engine, Request(Verb.CLAIM, ANA), "1.1").outcome.code == "claimed"
    refused = press(engine, Request(Verb.CLAIM, BO), "1.2")
    assert (refused.outcome.applied, refused.outcome.code, refused.outcome.holder) == (
        False, "already_claimed", ANA)
    later = NOW + timedelta(minutes=5)
    press(engine, Request(Verb.DONE, ANA, note="filed follow-up"), "1.3", now=later)
    press(engine, Request(Verb.DISMISS, BO, note="sport", reason=Reason.NOT_OUR_BEAT), "1.4")
    press(engine, Request(Verb.REOPEN, ANA), "1.5")
    with engine.connect() as db:
        assert actions.read(db, "s1") == (Item(), 4)  # claimed, done, dismissed, re-opened
        rows = [(r.user, r.action, r.outcome, r.applied, r.note, r.reason)
                for r in actions.history(db, "s1")]
    assert rows == [
        (ANA, "claim", "claimed", True, None, None),
        (BO, "claim", "already_claimed", False, None, None),
        (BO, "dismiss", "dismissed", True, "sport", "not_our_beat"),
        (ANA, "reopen", "reopened", True, None, None),
        (ANA, "done", "done", True, "filed follow-up", None),  # at NOW + 5 min: last
    ]


def test_the_same_press_delivered_twice_changes_nothing_the_second_time(engine: Engine) -> None:
    first = press(engine, Request(Verb.CLAIM, ANA), "7.7")
    assert first.outcome.applied and not first.repeat
    with engine.connect() as db:
        before = actions.read(db, "s1")
    again = press(engine, Request(Verb.CLAIM, ANA), "7.7", now=NOW + timedelta(seconds=3))
    assert again.repeat and not again.outcome.applied
    with engine.connect() as db:
        assert actions.read(db, "s1") == before
        assert db.scalar(select(func.count()).select_from(ACTION_EVENTS)) == 1


def _wait_for_a_lock_wait(engine: Engine) -> None:
    """Until a PostgreSQL backend waits on a lock: the second press has reached the key."""
    deadline = time.monotonic() + 10
    with engine.connect() as db:
        while time.monotonic() < deadline:
            waiting = db.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE wait_event_type = 'Lock'"))
            db.rollback()  # a fresh snapshot for the next look
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second press never waited for the first")


@pytest.mark.parametrize("bare_database_url",
                         [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize(("second_user", "second_ts"), [(ANA, "9.9"), (BO, "9.10")])
def test_on_postgresql_concurrent_presses_change_the_state_once(
    engine: Engine, second_user: str, second_ts: str,
) -> None:
    """The first press holds its transaction open while the second arrives: the same press
    finds its key taken; another person's claim loses the compare-and-set and is refused."""
    first_tx = engine.connect()
    first_tx.begin()
    actions.apply(first_tx, "s1", Request(Verb.CLAIM, ANA), NOW,
                  actions.press_key("9.9", ANA, "claim", "s1"))
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(press, engine, Request(Verb.CLAIM, second_user), second_ts)
        _wait_for_a_lock_wait(engine)
        first_tx.commit()
        first_tx.close()
        outcome = second.result(timeout=10)
    assert not outcome.outcome.applied
    assert outcome.repeat is (second_user == ANA)
    with engine.connect() as db:
        item, version = actions.read(db, "s1")
        assert (item.state, item.by, version) == (State.CLAIMED, ANA, 1)
        applied = db.scalar(select(func.count()).select_from(ACTION_EVENTS)
                            .where(ACTION_EVENTS.c.applied))
        assert applied == 1


def _action_item(engine: Engine, story_id: str, impact: float) -> None:
    """A stored story that became an action item (the columns `tally` reads, and the required)."""
    with engine.begin() as db:
        db.execute(STORIES.insert().values(
            id=story_id, scored_at=NOW, impact=impact, corroboration=2, qualifies=True,
            title=story_id, url=f"https://desk.example/{story_id}", payload="{}",
            updated_at=NOW, qualified_at=NOW))


def test_the_presser_name_is_kept_and_the_tally_bands_open_items_and_counts_verdicts(
    engine: Engine,
) -> None:
    for story_id, impact in (("a", 8.0), ("b", 8.5), ("c", 9.5), ("d", 9.0), ("e", 9.9)):
        _action_item(engine, story_id, impact)
    press(engine, Request(Verb.CLAIM, ANA, name="Ana Lima"), "5.1", story="d")
    press(engine, Request(Verb.SNOOZE, BO, until=NOW + timedelta(hours=1)), "5.2", story="c")
    press(engine, Request(Verb.DISMISS, BO, reason=Reason.DUPLICATE, name="bo"), "5.3",
          story="e")
    with engine.connect() as db:
        assert actions.read(db, "d")[0].by_name == "Ana Lima"
        assert [r.name for r in actions.history(db, "e")] == ["bo"]
        counted = actions.tally(db)
    # 8.5 is band 8 on both databases (PostgreSQL's CAST would round it to 9); a snoozed item
    # is still open; the claimed and the dismissed are not.
    assert counted.open_by_impact == {8: 2, 9: 1}
    assert counted.verdicts == {("dismiss", "duplicate"): 1}
