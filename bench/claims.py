"""Action items under load through a real `alertbot run` (issue 12's benchmark).

1. Ack latency: 2,100 stories (impact 9), one alert each across 100 channel routes, are pushed
   and posted (pacing "0s"); the service restarts with the shipped `pacing = "1s"`. One client
   presses Claim on 100 of them one at a time (the cost of a press with nothing queued), then
   20 concurrent clients press Claim on the other 2,000, each story once, as signed
   `block_actions` requests to POST /slack/events (Slack's v0 signature over the raw form
   body). The ack time is from just before a request is sent to its HTTP response. The owner
   edits the claims queue are sent meanwhile (paced per channel), competing with the presses;
   the run ends when every message shows its owner.
2. Owner edits with pacing on: 200 stories, each posted to three channels (600 alerts, posted
   by a first run with pacing "0s"); the service is stopped and started again on the same
   database with `pacing = "1s"`, as an operator restart would, and all 200 are claimed at
   once. The clock runs from the first press until the local Slack sink has seen 600
   chat.update calls showing the owner (and, counted apart, the 600 thread lines). The floor is
   200 paced messages per channel at 1 s: 200 s.
The Slack Web API is bench/owner_sink.py, in a process of its own.
Usage: python bench/claims.py [--quick] [--runs N] [--only ack|edits]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb, percentile
from bench.owner_sink import owner_sink
from bench.presses import SECRET, Press, press_all
from bench.sinks import Sink
from bench.vs_alertmanager import cpu_seconds
from tests.fakes import free_port
from tests.process import INGEST_TOKEN, Alertbot, write_toml

CLIENTS = 20
SERIAL = 100  # presses by one client before the 20 start
ACK_CHANNELS = [f"C0CLAIM{n:03d}" for n in range(100)]
EDIT_CHANNELS = ["C0DESKA", "C0DESKB", "C0DESKC"]


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def ack_config(pacing: str) -> str:
    return (f'[slack]\npacing = "{pacing}"\nbatch_window = "0s"\n'
            + "".join(f'\n[[slack.routes]]\nchannel = "{c}"\ntopics = ["t{n:03d}"]\n'
                      for n, c in enumerate(ACK_CHANNELS)))


def edits_config(pacing: str) -> str:
    # Every route takes every action item: each story is posted to all three channels.
    return (f'[slack]\npacing = "{pacing}"\nbatch_window = "0s"\n'
            + "".join(f'\n[[slack.routes]]\nchannel = "{c}"\n' for c in EDIT_CHANNELS))


def story(story_id: str, n: int) -> dict[str, Any]:
    return {"id": story_id, "url": f"https://desk.example/bench/{story_id}",
            "title": f"Operator loses contact with satellite {n}",
            "scored_at": datetime.now(UTC).isoformat(), "impact": 9, "sentiment": "negative",
            "topics": [f"t{n % len(ACK_CHANNELS):03d}"],
            "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{n}"},
                        {"outlet": "Reuters", "url": f"https://reuters.example/{n}"}],
            "key_takeaways": ["Operator confirms loss of contact"],
            "key_facts": ["Launched in 2024", "Serves three government customers"]}


class Run:
    """A sink, a temp folder and `alertbot run` in it; `posted` pushes the stories."""

    def __init__(self, sink: Sink, toml: str, prefix: str, stories: int) -> None:
        self.sink, self.stories = sink, stories
        self.folder = tempfile.TemporaryDirectory(prefix="bench-claims-")
        self.bot = Alertbot.make(Path(self.folder.name), toml,
                                 f"http://127.0.0.1:{sink.port}/api/", SLACK_SIGNING_SECRET=SECRET)
        self.bot.env["SLACK_BOT_TOKEN"] = "xoxb-bench"
        self.ids = [f"{prefix}-{n:05d}" for n in range(stories)]
        result = self.bot.cli("db", "upgrade")
        if result.returncode != 0:
            raise RuntimeError(f"alertbot db upgrade:\n{result.stderr}")
        sink.reset()

    def posted(self, per_push: int, per_story: int) -> list[Press]:
        """Push the stories, `per_push` at a time, and wait until each of their alerts is
        posted; one press per story, on its first message."""
        # Items planned together for one channel go out as one batch message: a push holds
        # at most one story per channel (the routes split them by topic), so each is an alert.
        with httpx.Client(headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                          timeout=60) as client:
            for start in range(0, self.stories, per_push):
                batch = [story(i, n) for n, i in enumerate(self.ids) if
                         start <= n < start + per_push]
                answer = client.post(f"{self.bot.url}/api/stories", json=batch)
                if answer.status_code != 202:
                    raise RuntimeError(f"push: {answer.status_code} {answer.text[:300]}")
        want = self.stories * per_story
        snap = self.sink.call("wait", "posted", want, 30, 600)
        got = sum(len(m) for m in snap["posted"].values())
        if got != want or snap["batched"]:
            raise RuntimeError(f"{got} of {want} alerts posted, {snap['batched']} batches")
        return [Press(story_id, messages[0][0], messages[0][1], f"U0BENCH{n % CLIENTS:02d}")
                for n, (story_id, messages) in enumerate(sorted(snap["posted"].items()))]

    def restart(self, toml: str) -> None:
        """The operator's restart: the same database, a new setting (here the pacing)."""
        self.bot.stop()
        write_toml(Path(self.bot.env["ALERTBOT_CONFIG"]), toml)
        self.bot.start()

    @property
    def pid(self) -> int:
        assert self.bot.process is not None
        return self.bot.process.pid

    def close(self) -> None:
        self.bot.stop()
        self.folder.cleanup()


def ack_run(sink: Sink, serial: int, stories: int) -> dict[str, float]:
    run = Run(sink, ack_config("0s"), f"claims-{serial:02d}", stories + SERIAL)
    try:
        run.bot.start()
        presses = run.posted(len(ACK_CHANNELS), 1)
        run.restart(ack_config("1s"))
        url, answers = f"{run.bot.url}/slack/events", f"http://127.0.0.1:{sink.port}"
        # One client first, one press at a time: what a press costs with nothing queued (and
        # the service's first requests, e.g. Bolt's auth.test, are out of the way).
        alone = asyncio.run(press_all(url, answers, presses[:SERIAL], 1))[SERIAL // 10:]
        sink.call("wait", "edited", SERIAL, 30, 120)
        presses = presses[SERIAL:]
        before, cpu, own = load(), cpu_seconds(run.pid), time.process_time()
        times = asyncio.run(press_all(url, answers, presses, CLIENTS))
        # CPU per press: the service's (its ack, its lazy half and the edits sent meanwhile)
        # and this client's own, to show the client did not set the pace.
        cpu_pressing, own = cpu_seconds(run.pid) - cpu, time.process_time() - own
        first = min(sent for sent, _ in times)
        snap = sink.call("wait", "edited", stories + SERIAL, 30, 600)
        cpu_all = cpu_seconds(run.pid) - cpu
        acks = [(answered - sent) * 1000 for sent, answered in times]
        one = [(answered - sent) * 1000 for sent, answered in alone]
        edited = sorted(at for at in snap["edited"].values() if at >= first)
        figures = {"presses": len(acks), "p50": percentile(acks, 50),
                   "p95": percentile(acks, 95), "p99": percentile(acks, 99), "max": max(acks),
                   "alone_p50": percentile(one, 50), "alone_p99": percentile(one, 99),
                   "pressing_s": max(a for _, a in times) - first,
                   "edited": len(edited), "all_shown_s": (edited[-1] - first) if edited else 0,
                   "updates": snap["updates"], "refusals": snap["responses"],
                   "cpu_ms_per_press": cpu_pressing / len(acks) * 1000,
                   "client_cpu_ms_per_press": own / len(acks) * 1000,
                   "cpu_ms_per_claim_shown": cpu_all / len(acks) * 1000,
                   "rss_mb": peak_rss_mb(run.pid)}
        print(f"  ack run {serial}: {before} before the presses, {load()} after", flush=True)
        return figures
    finally:
        run.close()


def edits_run(sink: Sink, serial: int, stories: int) -> dict[str, float]:
    run = Run(sink, edits_config("0s"), f"claims-{serial:02d}", stories)
    try:
        run.bot.start()
        presses = run.posted(1, len(EDIT_CHANNELS))
        run.restart(edits_config("1s"))
        before = load()
        want = stories * len(EDIT_CHANNELS)
        times = asyncio.run(press_all(f"{run.bot.url}/slack/events", f"http://127.0.0.1:"
                                      f"{sink.port}", presses, stories))
        first = min(sent for sent, _ in times)
        sink.call("wait", "edited", want, 30, 3 * stories + 60)
        snap = sink.call("wait", "replied", want, 30, 60)
        edited = sorted(snap["edited"].values())
        replied = sorted(snap["replied"].values())
        floor = float(stories)  # one paced message per channel per second
        figures = {"presses": len(times), "edited": len(edited), "replied": len(replied),
                   "pressing_s": max(a for _, a in times) - first,
                   "edits_s": (edited[-1] - first) if edited else 0,
                   "lines_s": (replied[-1] - first) if replied else 0,
                   "first_edit_s": (edited[0] - first) if edited else 0,
                   "floor_s": floor, "updates": snap["updates"], "refusals": snap["responses"],
                   "ack_p99": percentile([(a - s) * 1000 for s, a in times], 99)}
        figures["ratio"] = figures["edits_s"] / floor
        # A channel's edits go one per pacing gap: the gap plus a row's own time (its claim,
        # the two Web API calls, its record) is the period; the floor counts the gap only.
        periods = []
        for channel in EDIT_CHANNELS:
            times_there = sorted(t for (c, _), t in snap["edited"].items() if c == channel)
            if len(times_there) > 1:
                periods.append((times_there[-1] - times_there[0]) / (len(times_there) - 1))
        figures["period_s"] = sum(periods) / len(periods) if periods else 0
        print(f"  edits run {serial}: {before} at the presses, {load()} at the end", flush=True)
        return figures
    finally:
        run.close()


def show(name: str, figures: dict[str, float]) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" if float(v).is_integer() else f"{k} {v:,.2f}"
                                  for k, v in figures.items()), flush=True)


def table(acks: list[dict[str, float]], edits: list[dict[str, float]]) -> str:
    lines = ["| run | figure | value | bar |", "|---|---|---|---|"]
    for n, f in enumerate(acks, 1):
        lines += [f"| ack {n} | {f['presses']:,.0f} Claim presses, {CLIENTS} clients: ack p50 / "
                  f"p95 / p99 / max | {f['p50']:.1f} / {f['p95']:.1f} / **{f['p99']:.1f}** / "
                  f"{f['max']:.1f} ms | p99 ≤ 50 ms |",
                  f"| ack {n} | one client, one press at a time: ack p50 / p99 | "
                  f"{f['alone_p50']:.1f} / {f['alone_p99']:.1f} ms | |",
                  f"| ack {n} | CPU of the service per press while pressing / per claim until "
                  f"shown (the client's own) | {f['cpu_ms_per_press']:.2f} / "
                  f"{f['cpu_ms_per_claim_shown']:.2f} ms ({f['client_cpu_ms_per_press']:.2f})"
                  " | |",
                  f"| ack {n} | every message showing its owner, from the first press "
                  f"({f['edited']:,.0f} edits; refusals {f['refusals']:.0f}) | "
                  f"{f['all_shown_s']:.1f} s | |"]
    for n, f in enumerate(edits, 1):
        lines += [f"| edits {n} | {f['edited']:,.0f} owner edits (chat.update), first press → "
                  f"last | **{f['edits_s']:.1f} s** ({f['ratio']:.3f} × the {f['floor_s']:.0f} s"
                  " floor) | ≤ 220 s |",
                  f"| edits {n} | {f['replied']:,.0f} thread lines, first press → last | "
                  f"{f['lines_s']:.1f} s | |",
                  f"| edits {n} | first edit after the first press; a channel's period "
                  f"(gap + a row's own time) | {f['first_edit_s']:.2f} s; "
                  f"{f['period_s']:.3f} s | |",
                  f"| edits {n} | all {f['presses']:,.0f} presses acked (p99 "
                  f"{f['ack_p99']:.0f} ms) | {f['pressing_s']:.2f} s | |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200 presses, 20 stories × 3 channels")
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario")
    parser.add_argument("--only", choices=("ack", "edits"))
    args = parser.parse_args()
    ack_stories, edit_stories = (200, 20) if args.quick else (2000, 200)
    sink = Sink.start(owner_sink, free_port())
    acks: list[dict[str, float]] = []
    edits: list[dict[str, float]] = []
    serial = 0
    try:
        for _ in range(args.runs):
            if args.only != "edits":
                serial += 1
                acks.append(ack_run(sink, serial, ack_stories))
                show(f"ack {len(acks)}", acks[-1])
            if args.only != "ack":
                serial += 1
                edits.append(edits_run(sink, serial, edit_stories))
                show(f"edits {len(edits)}", edits[-1])
    finally:
        sink.stop()
    print()
    print(describe())
    print("command:", " ".join([".venv/bin/python bench/claims.py", *sys.argv[1:]]))
    print()
    print(table(acks, edits))


if __name__ == "__main__":
    main()
