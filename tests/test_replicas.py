"""Three `alertbot run` replicas on one PostgreSQL: everything sent exactly once, even when one
is killed mid-run, and every channel's pacing kept across them."""

from __future__ import annotations

import csv
import itertools
import json
import re
import socket
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot import db as database
from tests.conftest import new_pg_database, story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.process import Alertbot, pg_statuses, until
from tests.test_slack_app import SECRET, command
from tests.test_subscribers_cli import smtp_env

pytestmark = pytest.mark.postgres
CHANNELS = [f"C0REP{n:02d}" for n in range(40)]
STORIES = 50  # × 40 channels = 2,000 alerts
READERS = 500  # daily digest subscribers
WORKERS = 8  # per replica: the most one replica can have in flight
PACING = 0.1
TOML = (f'[delivery]\nlease = "3s"\nworkers = {WORKERS}\n\n'
        f'[slack]\npacing = "{PACING}s"\nbatch_window = "0s"\n\n'
        '[email]\nsend_empty_digest = true\n'
        + "".join(f'\n[[slack.routes]]\nchannel = "{c}"\n' for c in CHANNELS))


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(delay=0.05).start()  # slow enough that a killed replica holds rows
    yield fake
    fake.stop()


@pytest.fixture
def replicas(tmp_path: Path, postgres_server: str, slack: FakeSlack,
             smtp: tuple[SmtpRecorder, int]) -> Iterator[list[Alertbot]]:
    url = new_pg_database(postgres_server)
    database.upgrade(url)
    bots = []
    for n in range(3):
        home = tmp_path / f"replica-{n}"
        home.mkdir()
        bots.append(Alertbot.make(home, TOML, slack.url, DATABASE_URL=url,
                                  SLACK_SIGNING_SECRET=SECRET, **smtp_env(smtp[1])))
    yield bots
    for bot in bots:
        bot.stop()


def import_readers(bot: Alertbot) -> None:
    source = bot.tmp / "readers.csv"
    with source.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "mode", "tz", "topics", "digest_hour"])
        for n in range(READERS):
            writer.writerow([f"reader{n}@desk.example", "daily", "Europe/London", "", "07:00"])
    result = bot.cli("subscribers", "import", str(source))
    assert result.returncode == 0, result.stderr


def make_digests_due(url: str) -> None:
    """As if the readers' digest hour had come: their next digest is due now."""
    with psycopg.connect(url) as db:
        db.execute("UPDATE subscribers SET next_digest_at = now() AT TIME ZONE 'UTC'")


def recovered(bot: Alertbot) -> int:
    """Rows this replica returned to pending after their lease ran out (from its JSON log)."""
    total = 0
    for line in bot.log().splitlines():
        if line.startswith("{"):
            found = re.match(r"(\d+) deliveries returned to pending",
                             json.loads(line)["message"])
            total += int(found.group(1)) if found else 0
    return total


def held(url: str, bot: Alertbot) -> int:
    """How many rows `bot`'s process has claimed and not yet settled."""
    assert bot.process is not None
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM deliveries WHERE status = 'sending' "
                         "AND claimed_by = %s", [f"{socket.gethostname()}:{bot.process.pid}"])
        return int(row.fetchone()[0])  # type: ignore[index]


def test_three_replicas_send_everything_once_even_when_one_is_killed(
    replicas: list[Alertbot], slack: FakeSlack, smtp: tuple[SmtpRecorder, int],
) -> None:
    url = replicas[0].env["DATABASE_URL"]
    import_readers(replicas[0])
    for bot in replicas:
        bot.start()
    make_digests_due(url)  # every replica's digest job races for them
    def push(n: int, bot: Alertbot) -> None:
        pushed = bot.push([story(id=f"rep-{n}", title=f"Title of rep-{n}")])
        assert pushed.status_code == 202 and pushed.json()["planned"] == len(CHANNELS)

    half = STORIES // 2
    for n in range(half):  # each story to a replica in turn, as a load balancer would
        push(n, replicas[n % 3])
    victim = replicas[2]  # mid-run, while it holds rows, replica 2 dies
    until(lambda: held(url, victim) >= 3, 30)
    victim.kill()
    in_flight = held(url, victim)  # its rows left `sending`: nobody settles them now
    for n in range(half, STORIES):
        push(n, replicas[n % 2])
    recorder = smtp[0]

    def delivered() -> set[tuple[str, str]]:
        return {(c.body["channel"], c.body["text"]) for c in slack.posts()}

    slack.wait_for(lambda: len(delivered()) == STORIES * len(CHANNELS), 90,
                   lambda: f"{len(delivered())} of {STORIES * len(CHANNELS)} delivered")
    recorder.wait_for_messages(READERS, timeout=60)
    # All rows settled, those the dead replica held included (after their 3 s lease).
    until(lambda: pg_statuses(url) == {"sent": STORIES * len(CHANNELS) + READERS}, 30)
    assert pg_statuses(url) == {"sent": STORIES * len(CHANNELS) + READERS}

    readers = Counter(rcpt for _, rcpts, _ in recorder.messages for rcpt in rcpts)
    assert len(readers) == READERS  # every reader got their digest
    posts = slack.posts()
    duplicates = (len(posts) - len(delivered())) + (sum(readers.values()) - READERS)
    print(f"replicas: {len(posts)} posts, {len(recorder.messages)} emails, "
          f"{duplicates} sent twice; the killed replica held {in_flight} rows")
    assert 0 < in_flight <= WORKERS
    assert recovered(replicas[0]) + recovered(replicas[1]) == in_flight  # taken over, by lease
    assert duplicates <= in_flight
    # Pacing held across replicas: no channel got two posts within the gap, whoever sent them.
    arrivals: dict[str, list[float]] = defaultdict(list)
    for call in posts:
        arrivals[call.body["channel"]].append(call.at)
    tight = [(channel, round(b - a, 3)) for channel, times in arrivals.items()
             for a, b in itertools.pairwise(times) if b - a < PACING * 0.9]
    assert tight == []
    # Slack requests can reach any replica: each answers from the shared database.
    for bot in replicas[:2]:
        answer = command(bot, "rep-7", slack)
        assert answer.status_code == 200 and "Title of rep-7" in json.dumps(answer.json())
        assert "Traceback" not in bot.log()
