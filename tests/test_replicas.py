"""Three `alertbot run` replicas on one PostgreSQL: everything sent exactly once, even when one
is killed mid-run, and every channel's pacing kept across them."""

from __future__ import annotations

import csv
import itertools
import json
import re
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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


def midday_zone(now: datetime) -> str:
    """An IANA zone whose local time is now 12:xx, whatever the hour here or in London.

    The readers' digest hour is 00:00 there, so making their digest due "now" (below) finds
    today's hour some 12 hours past: the digest goes out, never "the digest hour passed while
    alertbot was down" (which a fixed 07:00 Europe/London gave from 00:00 to 07:00 London),
    and tomorrow's hour is as far away, so no second digest falls due while the test runs,
    even across midnight here. Etc/GMT-N is UTC+N (POSIX signs); offsets −11…+12 all exist.
    """
    offset = 12 - now.astimezone(UTC).hour  # hours ahead of UTC: −11 … +12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def import_readers(bot: Alertbot, zone: str) -> None:
    source = bot.tmp / "readers.csv"
    with source.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "mode", "tz", "topics", "digest_hour"])
        for n in range(READERS):
            writer.writerow([f"reader{n}@desk.example", "daily", zone, "", "00:00"])
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
    zone = midday_zone(datetime.now(UTC))
    local = datetime.now(ZoneInfo(zone))
    assert 10 <= local.hour < 14, (zone, local)  # their 00:00 is long past, and far off
    import_readers(replicas[0], zone)
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
    # Slack holds every post meanwhile, so what the victim has claimed stays claimed until
    # the kill, however fast this machine drained the first half; one more story through the
    # victim gives it rows to claim (it is woken at once, and 40 channels outnumber the 24
    # workers). Watching for held rows without the hold raced the victim's own sends.
    slack.pause("chat.postMessage")
    paused = time.monotonic()
    try:
        push(half, victim)
        until(lambda: held(url, victim) >= 3, 10)
        victim.kill()
    finally:
        slack.resume("chat.postMessage")
    # The hold must stay well inside the 3 s lease, or live replicas' rows are taken over too.
    hold = time.monotonic() - paused
    in_flight = held(url, victim)  # its rows left `sending`: nobody settles them now
    assert in_flight >= 3, f"the victim held {in_flight} rows when killed"
    for n in range(half + 1, STORIES):
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
          f"{duplicates} sent twice; the killed replica held {in_flight} rows; "
          f"Slack held posts for {hold:.2f} s")
    assert 0 < in_flight <= WORKERS
    taken_over = recovered(replicas[0]) + recovered(replicas[1])  # by lease, from the victim
    assert taken_over == in_flight, f"{taken_over} rows taken over; Slack held for {hold:.2f} s"
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
