"""A daily digest holds every action item stored before it was planned, and each exactly once.

The window follows the order stories were stored in (a number given in the storing
transaction), not the clock: no margin can let a story fall between two digests, or keep a
story that just qualified out of the digest planned right after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot import db as database
from tests.conftest import new_pg_database
from tests.fakes import SmtpRecorder
from tests.test_subscribers_cli import reader_and_two_stories

TOML = '[email]\nbatch_window = "0s"\n'


def test_ingest_then_at_once_digest_send_now_holds_the_stories_and_a_second_sends_nothing(
    tmp_path: Path, smtp: tuple[SmtpRecorder, int],
) -> None:
    recorder, port = smtp
    bot = reader_and_two_stories(tmp_path, TOML, port)
    sent = bot.cli("digest", "send", "--now")  # no waiting: the stories were stored first
    assert sent.stdout.startswith("1 planned, 0 empty, 0 already, 1 sent"), sent.stdout
    [(_, rcpts, raw)] = recorder.messages
    assert rcpts == ["ed@desk.example"]
    assert b"Budget line cut" in raw and b"Hypersonic test over the Pacific" in raw
    again = bot.cli("digest", "send", "--now")
    assert again.stdout.startswith("0 planned, 1 empty, 0 already, 0 sent"), again.stdout
    assert len(recorder.messages) == 1


# -- a race: ingest and digest planning in parallel processes ---------------------------------

RACE_SECONDS = 30
READERS = {"all@desk.example": (), "launch@desk.example": ("launch",)}


def _race_worker(role: str, url: str, seconds: float) -> list[str]:
    return [sys.executable, "-m", "tests.digest_race", role, url, str(seconds)]


def _stored_action_items(url: str) -> list[tuple[str, list[str]]]:
    engine = database.create(url)
    with engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT id, payload FROM stories WHERE qualified_seq IS NOT NULL").all()
    engine.dispose()
    return [(row[0], json.loads(row[1]).get("topics", [])) for row in rows]


def _digested(url: str) -> dict[str, Counter[str]]:
    engine = database.create(url)
    with engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT target, details FROM deliveries WHERE kind = 'daily'").all()
    engine.dispose()
    found: dict[str, Counter[str]] = {address: Counter() for address in READERS}
    for target, details in rows:
        held: dict[str, Any] = json.loads(details) if isinstance(details, str) else details
        found[target.removeprefix("email:")].update(held["stories"])
    return found


@pytest.mark.postgres
def test_ingest_racing_digest_planning_puts_every_story_in_exactly_one_digest(
    tmp_path: Path, postgres_server: str,
) -> None:
    """SQLite and PostgreSQL race side by side (one 30 s run for both keeps the suite short)."""
    urls = {"sqlite": f"sqlite:///{tmp_path / 'race.db'}",
            "postgres": new_pg_database(postgres_server)}
    for url in urls.values():
        database.upgrade(url)
        subprocess.run(_race_worker("setup", url, 0), check=True, timeout=60)
    started = time.monotonic()
    workers = [subprocess.Popen(_race_worker(role, url, RACE_SECONDS))
               for url in urls.values() for role in ("ingest", "plan", "plan")]
    assert [w.wait(timeout=RACE_SECONDS + 60) for w in workers] == [0] * len(workers)
    assert time.monotonic() - started >= RACE_SECONDS
    for backend, url in urls.items():
        subprocess.run(_race_worker("plan", url, 0), check=True, timeout=60)  # a last digest
        stored = _stored_action_items(url)
        digested = _digested(url)
        assert len(stored) > 100  # the race stored a good many while digests were planned
        for address, topics in READERS.items():
            wanted = {i for i, on in stored if not topics or set(topics) & set(on)}
            counts = digested[address]
            assert set(counts) == wanted, f"{backend} {address}: missing " \
                                          f"{sorted(wanted - set(counts))[:5]}"
            assert max(counts.values()) == 1, f"{backend} {address}: {counts.most_common(3)}"
        print(f"{backend}: {len(stored)} action items, "
              f"{sum(sum(c.values()) for c in digested.values())} digest entries")
