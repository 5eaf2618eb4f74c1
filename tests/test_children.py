"""`[delivery] processes`: the real `alertbot run` delivering from a child process too."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx

from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import Alertbot, until
from tests.test_service import metric, statuses, toml

CHANNELS = [f"C0P{n:02d}" for n in range(20)]
ROUTES = "\n\n[[slack.routes]]\n".join(f'channel = "{c}"' for c in CHANNELS)


def make(tmp_path: Path, slack: FakeSlack, processes: int = 2, workers: int = 32) -> Alertbot:
    text = toml(routes=ROUTES).replace(
        "[delivery]\n", f"[delivery]\nprocesses = {processes}\nworkers = {workers}\n")
    return Alertbot.make(tmp_path, text, slack.url)


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (/proc/<pid>/task/<tid>/children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(n) for n in (task / "children").read_text().split()}
        except OSError:  # a thread that has just ended
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def burst(bot: Alertbot, stories: int = 10) -> None:
    for n in range(stories):  # 10 stories × 20 routes = 200 deliveries
        assert bot.push([story(id=f"burst-{n}", title=f"Title of burst-{n}")]).status_code == 202


def senders(tmp_path: Path) -> dict[str, int]:
    """Rows sent, by the process that claimed them (`host:pid`)."""
    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        return dict(db.execute("SELECT claimed_by, count(*) FROM deliveries "
                               "WHERE status = 'sent' GROUP BY claimed_by"))


def test_two_processes_deliver_a_burst_once_per_row_and_count_it_in_one_place(
    tmp_path: Path,
) -> None:
    # Each post takes a while, and one process's 8 workers can hold 8 of the 20 channels at
    # most: the other process always finds channels free to claim while the burst lasts.
    slack = FakeSlack(delay=0.02).start()
    bot = make(tmp_path, slack, workers=8)
    try:
        bot.start()
        assert bot.process is not None and len(children(bot.process.pid)) == 1
        burst(bot)
        slack.wait_for_posts(200, timeout=60)
        until(lambda: statuses(tmp_path) == {"sent": 200}, 30)
        assert statuses(tmp_path) == {"sent": 200}
        posted = [(call.body["channel"], call.body["text"]) for call in slack.posts()]
        assert len(posted) == 200 and len(set(posted)) == 200
        by = senders(tmp_path)
        assert len(by) == 2, by  # the parent and its child each sent some
        # The child's deliveries are counted in the parent's /metrics (its reports come
        # every 0.2 s: wait for the counter, not a sleep).
        until(lambda: metric(bot, "alertbot_deliveries_total", transport="slack",
                             kind="alert", outcome="sent") >= 200, 10)
        assert metric(bot, "alertbot_deliveries_total", transport="slack", kind="alert",
                      outcome="sent") == 200
        assert metric(bot, "alertbot_delivery_latency_seconds_count", transport="slack") == 200
        assert httpx.get(f"{bot.url}/readyz").json()["degraded"] == {}
    finally:
        bot.stop()
        slack.stop()


def test_a_child_killed_mid_burst_loses_nothing_and_is_started_again(tmp_path: Path) -> None:
    slack = FakeSlack(delay=0.02).start()  # slow enough to kill mid-burst
    bot = make(tmp_path, slack, workers=8)  # the child has channels to claim (see above)
    try:
        bot.start()
        assert bot.process is not None
        parent = bot.process.pid
        [child] = children(parent)
        burst(bot)
        until(lambda: any(by.endswith(f":{child}") for by in senders(tmp_path)), 30)
        assert any(by.endswith(f":{child}") for by in senders(tmp_path))  # killed mid-burst
        os.kill(child, signal.SIGKILL)
        until(lambda: not alive(child), 10)

        def degraded() -> dict[str, str]:
            answer: dict[str, str] = httpx.get(f"{bot.url}/readyz").json()["degraded"]
            return answer

        # Named while it is down (its restart waits a second, then its start-up).
        until(lambda: "delivery process 2" in degraded(), 10)
        assert degraded()["delivery process 2"] == "exited with -9; starting it again"
        with sqlite3.connect(tmp_path / "alertbot.db") as db:
            in_flight = db.execute("SELECT count(*) FROM deliveries WHERE status = 'sending' "
                                   "AND claimed_by LIKE ?", (f"%:{child}",)).fetchone()[0]

        def delivered() -> set[tuple[str, str]]:
            return {(call.body["channel"], call.body["text"]) for call in slack.posts()}

        # The parent goes on; the killed child's rows come back after their 1 s lease.
        until(lambda: statuses(tmp_path) == {"sent": 200}, 60)
        assert statuses(tmp_path) == {"sent": 200}
        assert len(delivered()) == 200
        duplicates = len(slack.posts()) - len(delivered())
        print(f"child killed: {in_flight} in flight, {duplicates} sent twice")
        assert duplicates <= in_flight
        until(lambda: len(children(parent)) == 1, 30)
        assert children(parent) != {child}
        until(lambda: not degraded(), 30)  # ready again
        assert degraded() == {}
        assert "delivery process 2 (pid" in bot.log() and "exited with -9" in bot.log()
    finally:
        bot.stop()
        slack.stop()


def test_stopping_the_service_stops_its_children(tmp_path: Path, slack: FakeSlack) -> None:
    bot = make(tmp_path, slack, processes=3)
    bot.start()
    assert bot.process is not None
    started = children(bot.process.pid)
    assert len(started) == 2
    assert bot.stop() == 0
    assert not any(alive(pid) for pid in started)


def test_children_stop_when_the_service_dies(tmp_path: Path, slack: FakeSlack) -> None:
    """SIGKILL leaves the parent no chance to stop them: their stdin ends, and they exit."""
    bot = make(tmp_path, slack)
    bot.start()
    assert bot.process is not None
    [child] = children(bot.process.pid)
    bot.kill()
    until(lambda: not alive(child), 15)
    assert not alive(child)


def test_one_process_written_or_left_out_starts_no_child(tmp_path: Path, slack: FakeSlack
                                                          ) -> None:
    for name in ("written", "left out"):
        (tmp_path / name).mkdir()
        bot = (make(tmp_path / name, slack, processes=1) if name == "written"
               else Alertbot.make(tmp_path / name, toml(), slack.url))
        bot.start()
        try:
            assert bot.process is not None
            assert children(bot.process.pid) == set(), name
        finally:
            bot.stop()


def test_config_check_names_a_processes_value_it_refuses(tmp_path: Path) -> None:
    """0, false, empty and above 16 are refused by name (the door an operator checks with)."""
    for number, written in enumerate(("0", "false", '""', "17")):
        (tmp_path / str(number)).mkdir()
        text = toml().replace("[delivery]\n", f"[delivery]\nprocesses = {written}\n")
        result = Alertbot.make(tmp_path / str(number), text).cli("config", "check")
        assert result.returncode != 0, written
        assert "delivery.processes" in result.stderr, (written, result.stderr)
