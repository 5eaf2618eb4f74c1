"""PostgreSQL stopped for 10 s in the middle of a run: the service recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot import db as database
from bot.readers.subscribers import unsubscribe_token
from tests.conftest import PostgresServer, new_pg_database, story
from tests.fakes import FakeSlack
from tests.process import Alertbot, pg_statuses, until

pytestmark = pytest.mark.postgres
KEY = b"process-test-key"  # ALERTBOT_SECRET_KEY of tests.process.Alertbot
CHANNELS = [f"C0OUT{n:02d}" for n in range(20)]
TOML = ('[delivery]\nlease = "3s"\nretry_base = "200ms"\n\n[slack]\npacing = "0s"\n'
        'batch_window = "0s"\n' + "".join(f'\n[[slack.routes]]\nchannel = "{c}"\n'
                                          for c in CHANNELS))


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    own = PostgresServer().start()  # its own: the test stops it
    yield own
    own.remove()


def test_postgres_stopped_for_ten_seconds_mid_run_recovers_by_itself(
    tmp_path: Path, server: PostgresServer,
) -> None:
    url = new_pg_database(server.url)
    database.upgrade(url)
    slack = FakeSlack(delay=0.05).start()  # slow enough that work is in flight at the stop
    bot = Alertbot.make(tmp_path, TOML, slack.url, DATABASE_URL=url).start()
    try:
        for n in range(5):  # 5 stories × 20 channels = 100 deliveries
            assert bot.push([story(id=f"out-{n}", title=f"Title of out-{n}")]).status_code == 202
        slack.wait_for_posts(10)
        server.stop()
        stopped = time.monotonic()

        def ready() -> int:
            return httpx.get(f"{bot.url}/readyz", timeout=5).status_code

        until(lambda: ready() == 503, 10)
        answer = httpx.get(f"{bot.url}/readyz", timeout=5)
        assert answer.status_code == 503
        assert answer.json()["problems"]["database"].startswith("unreachable")
        assert httpx.get(f"{bot.url}/healthz").text == "ok"  # alive, if not ready
        refused = bot.push([story(id="during", title="Title of during")])
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        leaving = f"{bot.url}/unsubscribe/{unsubscribe_token(KEY, 'ed@desk.example')}"
        page = httpx.post(leaving, timeout=10)
        assert page.status_code == 503 and page.headers["Retry-After"] == "5"
        assert "Please try again in a minute" in page.text
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))  # the outage itself: 10 s
        server.start()

        until(lambda: ready() == 200, 30)
        assert ready() == 200
        assert bot.push([story(id="after", title="Title of after")]).status_code == 202
        assert "You are unsubscribed" in httpx.post(leaving, timeout=10).text

        def delivered() -> set[tuple[str, str]]:
            return {(c.body["channel"], c.body["text"]) for c in slack.posts()}

        until(lambda: len(delivered()) >= 120, 60)  # the 100, and "after" on 20 channels
        until(lambda: pg_statuses(url) == {"sent": 120}, 30)
        assert pg_statuses(url) == {"sent": 120}
        assert len(delivered()) == 120
        # At most the rows in flight when the database went away are sent twice: a worker
        # holds at most `delivery.workers` (4) rows at a time.
        duplicates = len(slack.posts()) - len(delivered())
        print(f"outage: {duplicates} sent twice")
        assert duplicates <= 4
        # Every post Slack received is counted as sent, those whose outcome the database
        # could only record after the outage included.
        metrics = httpx.get(f"{bot.url}/metrics", timeout=5).text
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("alertbot_deliveries_total{")
                      and 'outcome="sent"' in line and 'transport="slack"' in line)
        assert counted == len(slack.posts())
    finally:
        bot.stop()
        slack.stop()
    assert "Traceback" not in bot.cli("deliveries", "list").stderr
