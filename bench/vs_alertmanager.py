"""alertbot against Prometheus Alertmanager on the same machine, sinks and alerts.

Both systems deliver to the same two sinks (bench/sinks.py: a Slack endpoint and an SMTP server,
each in a process of its own, timing arrivals by the alert id found in the message). Each
scenario runs on both systems, one after the other (the order swapped from one scenario to the
next, so drift on a shared machine is not always charged to the same system), and each run
starts its system afresh: a new temp folder, database or storage, and process.

1. Slack burst: N alerts, 100 per push, each to one of 100 channels; deliveries/s from the
   first push to the last arrival, CPU seconds of the service over that span, its peak RSS.
2. Email burst: N alerts to one email receiver; alerts delivered/s, and emails received.
3. Both: the Slack burst with the email receiver configured too; Slack deliveries/s.
4. Latency: M alerts one at a time (Slack and email configured; the next is pushed when both
   the Slack message and the email of the last one arrived); POST → arrival at the Slack sink,
   p50/p99, and the same for the email sink.

Alertmanager is configured to send each distinct alert as its own notification as soon as it
can: `group_by: ['...']` (every label set is its own group), `group_wait: 0s`. alertbot gets
`batch_window = "0s"` on each route and for email, and `[slack] pacing = "0s"`.
Needs Debian's `prometheus-alertmanager` (/usr/bin/prometheus-alertmanager).
Usage: .venv/bin/python bench/vs_alertmanager.py [--quick] [--aiosmtpd]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb, percentile
from bench.sinks import Sink, aiosmtpd_sink, slack_sink, smtp_sink
from tests.fakes import free_port
from tests.process import INGEST_TOKEN, Alertbot

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
CHANNELS = [f"C0BENCH{n:03d}" for n in range(100)]
TOPICS = [f"t{n:03d}" for n in range(100)]
READER = "reader@bench.example"
BATCH = 100  # alerts per push in a burst: one per channel, so no channel gets two in one push
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Alert:
    id: str
    n: int

    @property
    def topic(self) -> str:
        return TOPICS[self.n % len(TOPICS)]

    @property
    def channel(self) -> str:
        return CHANNELS[self.n % len(CHANNELS)]

    @property
    def title(self) -> str:
        return f"Bench alert {self.id}: operator loses contact with satellite {self.n}"

    @property
    def url(self) -> str:
        return f"https://desk.example/bench/{self.id}"


@dataclass(frozen=True)
class Scenario:
    name: str
    slack: bool
    email: bool
    one_at_a_time: bool = False


SLACK = Scenario("Slack burst", slack=True, email=False)
EMAIL = Scenario("email burst", slack=False, email=True)
BOTH = Scenario("Slack + email burst", slack=True, email=True)
LATENCY = Scenario("one at a time", slack=True, email=True, one_at_a_time=True)
# alertbot only (`--drain`): what delivering costs apart from ingest (see `Bench.drain`).
DRAIN = Scenario("Slack drain", slack=True, email=False)


class System:
    """A system under test, started for one scenario in its own temp folder."""

    name = ""

    def start(self, tmp: Path, scenario: Scenario, slack_port: int, smtp_port: int) -> None:
        raise NotImplementedError

    def push(self, alerts: list[Alert]) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class AlertbotSystem(System):
    name = "alertbot"

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes  # `[delivery] processes`; None: as shipped

    def start(self, tmp: Path, scenario: Scenario, slack_port: int, smtp_port: int,
              prepare: Callable[[Alertbot], None] | None = None) -> None:
        toml = '[slack]\npacing = "0s"\n\n[email]\nbatch_window = "0s"\n'
        if self.processes is not None:
            toml += f"\n[delivery]\nprocesses = {self.processes}\n"
        if scenario.slack:
            # Each route writes its own zero window (the desk default stays at 30 s): the
            # setting as an operator wanting every alert at once would write it.
            toml += "".join(f'\n[[slack.routes]]\nchannel = "{channel}"\ntopics = ["{topic}"]\n'
                            'batch_window = "0s"\n' for channel, topic in zip(CHANNELS, TOPICS,
                                                                              strict=True))
        self.bot = Alertbot.make(tmp, toml, f"http://127.0.0.1:{slack_port}/api/",
                                 SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port),
                                 SMTP_SECURITY="none", EMAIL_FROM="Desk <alerts@bench.example>")
        self.bot.env["SLACK_BOT_TOKEN"] = "xoxb-bench"
        for command in (("db", "upgrade"),
                        *([("subscribers", "add", READER, "--mode", "instant")]
                          if scenario.email else [])):
            result = self.bot.cli(*command)
            if result.returncode != 0:
                raise RuntimeError(f"alertbot {' '.join(command)}:\n{result.stderr}")
        if prepare is not None:
            prepare(self.bot)
        self.bot.start()
        self.client = httpx.Client(headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                                   timeout=120)

    def push(self, alerts: list[Alert]) -> None:
        now = datetime.now(UTC).isoformat()
        stories = [{
            "id": a.id, "url": a.url, "title": a.title, "scored_at": now, "impact": 9,
            "sentiment": "negative", "topics": [a.topic],
            "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{a.id}"},
                        {"outlet": "Reuters", "url": f"https://reuters.example/{a.id}"}],
            "key_takeaways": ["Operator confirms loss of contact"],
            "key_facts": ["Launched in 2024", "Serves three government customers"],
        } for a in alerts]
        answer = self.client.post(f"{self.bot.url}/api/stories", json=stories)
        if answer.status_code != 202:
            raise RuntimeError(f"alertbot push: {answer.status_code} {answer.text[:500]}")

    @property
    def pid(self) -> int:
        assert self.bot.process is not None
        return self.bot.process.pid

    def stop(self) -> None:
        self.client.close()
        self.bot.stop()

    def stories(self, alerts: list[Alert]) -> bytes:
        """The push's body, as a file for `alertbot ingest`."""
        now = datetime.now(UTC).isoformat()
        return json.dumps([{
            "id": a.id, "url": a.url, "title": a.title, "scored_at": now, "impact": 9,
            "sentiment": "negative", "topics": [a.topic],
            "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{a.id}"},
                        {"outlet": "Reuters", "url": f"https://reuters.example/{a.id}"}],
            "key_takeaways": ["Operator confirms loss of contact"],
        } for a in alerts]).encode()


class AlertmanagerSystem(System):
    name = "Alertmanager"

    def start(self, tmp: Path, scenario: Scenario, slack_port: int, smtp_port: int) -> None:
        receiver: dict[str, Any] = {"name": "desk"}
        if scenario.slack:
            receiver["slack_configs"] = [{
                "api_url": f"http://127.0.0.1:{slack_port}/api/chat.postMessage",
                "channel": "{{ .CommonLabels.channel }}", "send_resolved": False}]
        if scenario.email:
            receiver["email_configs"] = [{
                "to": READER, "from": "alertmanager@bench.example",
                "smarthost": f"127.0.0.1:{smtp_port}", "require_tls": False,
                "send_resolved": False}]
        config = {
            # Long enough that no alert resolves (and no resolution is considered) mid-run.
            "global": {"resolve_timeout": "1h"},
            "route": {
                "receiver": "desk",
                # '...' groups by every label: each distinct alert is a group of its own, so
                # each is its own notification. group_wait 0s: a new group is flushed at once.
                "group_by": ["..."], "group_wait": "0s",
                # Paces a group's later notifications only (and bounds one flush's retries);
                # each group here holds one alert, sent on the first flush. Not the smallest
                # value (it cannot be 0): at 1s each of 5,000 groups re-runs its pipeline every
                # second, which cost Alertmanager CPU and was no faster (measured). 5m is its
                # default.
                "group_interval": "5m",
                "repeat_interval": "24h",  # no re-notification within a run
            },
            "receivers": [receiver],
        }
        # YAML is a superset of JSON: no YAML library needed.
        (tmp / "alertmanager.yml").write_text(json.dumps(config, indent=2))
        (tmp / "data").mkdir()
        self.port = free_port()
        self.log = (tmp / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={tmp / 'alertmanager.yml'}",
             f"--storage.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--cluster.listen-address="],  # no HA mesh: one instance, no gossip settle wait
            stdout=self.log, stderr=self.log, cwd=tmp)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(timeout=120)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("Alertmanager exited:\n"
                                   + (tmp / "alertmanager.log").read_text()[-3000:])
            try:
                if self.client.get(f"{self.url}/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("Alertmanager did not become ready")

    def push(self, alerts: list[Alert]) -> None:
        now = datetime.now(UTC).isoformat()
        body = [{
            "labels": {"alertname": "ActionItem", "id": a.id, "channel": a.channel,
                       "topic": a.topic},
            # What alertbot's message shows, so both render a comparable amount.
            "annotations": {"summary": a.title, "url": a.url, "impact": "9",
                            "sources": "SpaceNews, Reuters",
                            "takeaways": "Operator confirms loss of contact"},
            "startsAt": now, "generatorURL": a.url,
        } for a in alerts]
        answer = self.client.post(f"{self.url}/api/v2/alerts", json=body)
        if answer.status_code != 200:
            raise RuntimeError(f"Alertmanager push: {answer.status_code} {answer.text[:500]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a live process and its descendants (alertbot's
    delivery processes): /proc/<pid>/stat utime, stime, and cutime, cstime for those ended."""
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = sum(int(value) for value in fields[11:15]) / TICK
    return own + sum(cpu_seconds(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError):  # a thread or a child that has just ended
            found += [int(n) for n in (task / "children").read_text().split()]
    return found


def service_rss_mb(pid: int) -> float:
    """Peak RSS of a process plus that of each live descendant: an upper bound on the peak of
    their sum (each peaked when it did, and shared library pages count in each)."""
    return peak_rss_mb(pid) + sum(service_rss_mb(child) for child in _children(pid))


@dataclass
class Run:
    """One system's figures for one scenario."""

    system: str
    scenario: Scenario
    expected: int
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, alerts: int, one_by_one: int, warmup: int, aiosmtpd: bool = False
                 ) -> None:
        self.alerts, self.one_by_one, self.warmup = alerts, one_by_one, warmup
        self.slack = Sink.start(slack_sink, free_port())
        self.smtp = Sink.start(aiosmtpd_sink if aiosmtpd else smtp_sink, free_port())
        self.serial = 0

    def close(self) -> None:
        self.slack.stop()
        self.smtp.stop()

    @contextmanager
    def started(self, system: System, scenario: Scenario) -> Iterator[str]:
        """The system running for one scenario; yields the run's id prefix."""
        self.serial += 1
        prefix = f"VS{self.serial:02d}"
        self.slack.reset()
        self.smtp.reset()
        with tempfile.TemporaryDirectory(prefix=f"vs-{system.name.lower()}-") as name:
            system.start(Path(name), scenario, self.slack.port, self.smtp.port)
            try:
                yield prefix
            finally:
                system.stop()

    def run(self, system: System, scenario: Scenario) -> Run:
        with self.started(system, scenario) as prefix:
            if scenario.one_at_a_time:
                return self.latency(system, scenario, prefix)
            return self.burst(system, scenario, prefix)

    def burst(self, system: System, scenario: Scenario, prefix: str) -> Run:
        run = Run(system.name, scenario, self.alerts)
        alerts = [Alert(f"{prefix}-{n:06d}", n) for n in range(self.alerts)]
        waits: list[tuple[str, Sink]] = []
        if scenario.slack:
            waits.append(("slack", self.slack))
        if scenario.email:
            waits.append(("email", self.smtp))
        # The sinks' CPU too: if a sink used most of a core, it (not the system) set the pace.
        sinks_before = {kind: cpu_seconds(sink.pid) for kind, sink in waits}
        cpu_before = cpu_seconds(system.pid)
        started = time.monotonic()
        for start in range(0, len(alerts), BATCH):
            system.push(alerts[start : start + BATCH])
        run.figures["pushed_s"] = time.monotonic() - started
        for _, sink in waits:
            sink.wait(prefix, self.alerts)
        # Everything arrived (or stopped arriving): the service's work for the burst is done.
        run.figures["cpu_s"] = cpu_seconds(system.pid) - cpu_before
        run.figures["rss_mb"] = service_rss_mb(system.pid)
        for kind, sink in waits:
            run.figures[f"{kind}_sink_cpu_s"] = cpu_seconds(sink.pid) - sinks_before[kind]
        time.sleep(1)  # a second more, to catch repeats and stragglers
        for kind, sink in waits:
            snap = sink.wait(prefix, 0)
            arrivals = sorted(snap["first"].values())
            arrived = len(arrivals)
            end = arrivals[-1] if arrivals else started
            run.figures[f"{kind}_arrived"] = arrived
            run.figures[f"{kind}_rate"] = arrived / (end - started) if arrived else 0.0
            run.figures[f"{kind}_seconds"] = end - started
            run.figures[f"{kind}_messages"] = snap["messages"]
            run.figures[f"{kind}_repeats"] = snap["repeats"]
            if kind == "slack":
                run.figures["slack_channels"] = snap["channels"]
            if arrived < self.alerts:
                run.notes.append(f"{kind}: only {arrived:,} of {self.alerts:,} alerts arrived")
            if snap["repeats"]:
                run.notes.append(f"{kind}: {snap['repeats']:,} alerts arrived more than once")
        return run

    def drain(self, system: AlertbotSystem) -> Run:
        """alertbot only: N Slack rows planned by `alertbot ingest` before the service starts;
        the service's CPU seconds per delivery from the moment it answers /healthz (imports
        and start-up done) until the last arrival, over the deliveries made in that span.
        This is delivery alone (claim, load, render, send, settle, log), without the ingest
        that scenario 1 charges to the service too."""
        self.serial += 1
        prefix = f"VS{self.serial:02d}"
        self.slack.reset()
        alerts = [Alert(f"{prefix}-{n:06d}", n) for n in range(self.alerts)]

        def ingest(bot: Alertbot) -> None:
            # A file per 100 (one story per channel): each is planned on its own, as a push
            # of 100 is, so each story is a message of its own.
            files = []
            for start in range(0, len(alerts), BATCH):
                files.append(bot.tmp / f"stories-{start:06d}.json")
                files[-1].write_bytes(system.stories(alerts[start : start + BATCH]))
            result = bot.cli("ingest", *map(str, files))
            if result.returncode != 0:
                raise RuntimeError(f"alertbot ingest:\n{result.stderr}")

        run = Run(system.name, DRAIN, self.alerts)
        with tempfile.TemporaryDirectory(prefix="vs-drain-") as name:
            system.start(Path(name), DRAIN, self.slack.port, self.smtp.port, prepare=ingest)
            try:
                cpu_before, started = cpu_seconds(system.pid), time.monotonic()
                before = len(self.slack.wait(prefix, 0)["first"])
                self.slack.wait(prefix, self.alerts)
                cpu, seconds = cpu_seconds(system.pid) - cpu_before, time.monotonic() - started
                snap = self.slack.wait(prefix, 0)
            finally:
                system.stop()
        run.figures["slack_arrived"] = len(snap["first"])
        run.figures["slack_messages"] = snap["messages"]
        run.figures["slack_repeats"] = snap["repeats"]
        run.figures["measured"] = len(snap["first"]) - before
        run.figures["cpu_s"] = cpu
        run.figures["cpu_ms_per_delivery"] = cpu * 1000 / max(1, len(snap["first"]) - before)
        run.figures["rate"] = (len(snap["first"]) - before) / seconds  # deliveries/s
        return run

    def latency(self, system: System, scenario: Scenario, prefix: str) -> Run:
        run = Run(system.name, scenario, self.one_by_one)
        sent: dict[str, float] = {}
        slack: list[float] = []
        total = self.warmup + self.one_by_one
        for n in range(total):
            alert = Alert(f"{prefix}-{n:06d}", n)
            started = time.monotonic()
            system.push([alert])
            at = self.slack.wait_id(alert.id, 10)
            # The email too, before the next push: each alert meets an idle system, rather
            # than queueing behind the previous alert's email (which takes longer than its
            # Slack message in both systems, so a backlog would grow alert by alert).
            emailed = self.smtp.wait_id(alert.id, 10)
            if at is None or emailed is None:
                run.notes.append(f"{alert.id} did not reach {'Slack' if at is None else 'SMTP'}"
                                 " within 10 s")
                continue
            if n >= self.warmup:
                sent[alert.id] = started
                slack.append((at - started) * 1000)
        run.figures["rss_mb"] = service_rss_mb(system.pid)
        snap = self.smtp.wait(prefix, 0)
        email = [(snap["first"][i] - t) * 1000 for i, t in sent.items() if i in snap["first"]]
        run.figures["slack_arrived"] = len(slack)
        run.figures["email_arrived"] = len(email)
        run.figures["slack_repeats"] = self.slack.wait(prefix, 0)["repeats"]
        run.figures["email_repeats"] = snap["repeats"]
        for name, values in (("slack", slack), ("email", email)):
            if len(values) >= 2:
                for q in (50, 99):
                    run.figures[f"{name}_p{q}"] = percentile(values, q)
                run.figures[f"{name}_max"] = max(values)
        if len(email) < len(sent):
            run.notes.append(f"email: {len(email)} of {len(sent)} alerts arrived")
        return run


def report(runs: dict[tuple[str, str], Run], alerts: int, one_by_one: int) -> str:
    bot = "alertbot"
    am = "Alertmanager"

    def cell(system: str, scenario: Scenario, key: str) -> float | None:
        run = runs.get((system, scenario.name))
        return run.figures.get(key) if run else None

    rows: list[tuple[str, Scenario, str, str, Callable[[float], str]]] = [
        (f"1. Slack burst ({alerts:,}): deliveries/s", SLACK, "slack_rate", "higher",
         lambda v: f"{v:,.0f}"),
        ("1. Slack burst: seconds, first push → last arrival", SLACK, "slack_seconds",
         "lower", lambda v: f"{v:.2f}"),
        ("1. Slack burst: CPU seconds of the service", SLACK, "cpu_s", "lower",
         lambda v: f"{v:.2f}"),
        ("1. Slack burst: peak RSS of the service (MB)", SLACK, "rss_mb", "lower",
         lambda v: f"{v:.0f}"),
        ("1. Slack burst: seconds until every push was answered", SLACK, "pushed_s", "lower",
         lambda v: f"{v:.2f}"),
        ("1. Slack burst: chat.postMessage calls", SLACK, "slack_messages", "",
         lambda v: f"{v:,.0f}"),
        (f"2. email burst ({alerts:,}): alerts delivered/s", EMAIL, "email_rate", "higher",
         lambda v: f"{v:,.0f}"),
        ("2. email burst: emails received", EMAIL, "email_messages", "",
         lambda v: f"{v:,.0f}"),
        ("2. email burst: CPU seconds of the service", EMAIL, "cpu_s", "lower",
         lambda v: f"{v:.2f}"),
        ("2. email burst: peak RSS (MB)", EMAIL, "rss_mb", "lower", lambda v: f"{v:.0f}"),
        (f"3. Slack + email ({alerts:,}): Slack deliveries/s", BOTH, "slack_rate", "higher",
         lambda v: f"{v:,.0f}"),
        ("3. Slack + email: alerts delivered by email/s", BOTH, "email_rate", "higher",
         lambda v: f"{v:,.0f}"),
        ("3. Slack + email: emails received", BOTH, "email_messages", "",
         lambda v: f"{v:,.0f}"),
        ("3. Slack + email: CPU seconds of the service", BOTH, "cpu_s", "lower",
         lambda v: f"{v:.2f}"),
        ("3. Slack + email: peak RSS (MB)", BOTH, "rss_mb", "lower", lambda v: f"{v:.0f}"),
        (f"4. one at a time ({one_by_one}): POST → Slack p50 (ms)", LATENCY, "slack_p50",
         "lower", lambda v: f"{v:.2f}"),
        ("4. one at a time: POST → Slack p99 (ms)", LATENCY, "slack_p99", "lower",
         lambda v: f"{v:.2f}"),
        ("4. one at a time: POST → email p50 (ms)", LATENCY, "email_p50", "lower",
         lambda v: f"{v:.2f}"),
        ("4. one at a time: POST → email p99 (ms)", LATENCY, "email_p99", "lower",
         lambda v: f"{v:.2f}"),
    ]
    lines = ["| figure | alertbot | Alertmanager | ratio alertbot / AM | better |",
             "|---|---|---|---|---|"]
    for label, scenario, key, better, fmt in rows:
        a, b = cell(bot, scenario, key), cell(am, scenario, key)
        ratio = f"{a / b:.2f}" if a is not None and b else "–"
        lines.append(f"| {label} | {fmt(a) if a is not None else '–'} | "
                     f"{fmt(b) if b is not None else '–'} | {ratio} | {better} |")
    missing = {name: sum(run.expected - int(run.figures.get(f"{kind}_arrived", run.expected))
                         for (system, _), run in runs.items() if system == name
                         for kind in ("slack", "email"))
               for name in (bot, am)}
    repeats = {name: sum(int(run.figures.get(f"{kind}_repeats", 0))
                         for (system, _), run in runs.items() if system == name
                         for kind in ("slack", "email"))
               for name in (bot, am)}
    lines.append(f"| alerts missing / arriving twice, all scenarios | {missing[bot]} / "
                 f"{repeats[bot]} | {missing[am]} / {repeats[am]} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 500 alerts per burst, 50 one at a time")
    parser.add_argument("--aiosmtpd", action="store_true",
                        help="the SMTP sink on aiosmtpd instead of the lean one (a cross-check:"
                             " it costs ~3 ms of CPU per connection)")
    parser.add_argument("--only", choices=("alertbot", "Alertmanager"),
                        help="run one system only (an A/B of alertbot's own figures: run it "
                             "alternately with PYTHONPATH at each checkout)")
    parser.add_argument("--alerts", type=int, help="alerts per burst (default 5,000; 500 --quick)")
    parser.add_argument("--drain", action="store_true",
                        help="alertbot only: the CPU of delivering N Slack rows planned by "
                             "another process (no ingest in the service), then exit")
    parser.add_argument("--processes", type=int,
                        help="alertbot's `[delivery] processes` (default: as shipped)")
    parser.add_argument("--scenarios", default="1234",
                        help="which scenarios to run, by number (default 1234)")
    args = parser.parse_args()
    if not Path(ALERTMANAGER).exists():
        sys.exit(f"{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager")
    alerts, one_by_one, warmup = (500, 50, 10) if args.quick else (5000, 200, 20)
    alerts = alerts if args.alerts is None else args.alerts
    version = subprocess.run([ALERTMANAGER, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    bench = Bench(alerts, one_by_one, warmup, args.aiosmtpd)
    if args.drain:
        try:
            run = bench.drain(AlertbotSystem(args.processes))
        finally:
            bench.close()
        print(", ".join(f"{k} {v:,.2f}" for k, v in run.figures.items()), *run.notes)
        return
    runs: dict[tuple[str, str], Run] = {}
    try:
        for index, scenario in enumerate((SLACK, EMAIL, BOTH, LATENCY)):
            if str(index + 1) not in args.scenarios:
                continue
            systems: list[System] = [AlertbotSystem(args.processes), AlertmanagerSystem()]
            if index % 2:  # swap who goes first, so drift is not always charged to one
                systems.reverse()
            systems = [s for s in systems if args.only in (None, s.name)]
            for system in systems:
                run = bench.run(system, scenario)
                runs[(system.name, scenario.name)] = run
                shown = ", ".join(f"{k} {v:,.0f}" if float(v).is_integer() else f"{k} {v:,.2f}"
                                  for k, v in run.figures.items())
                print(f"{scenario.name} · {system.name}: {shown}", flush=True)
                for note in run.notes:
                    print(f"  ! {note}", flush=True)
    finally:
        bench.close()
    print()
    print(describe())
    print(f"{version}; alertbot from this checkout; sinks in processes of their own")
    print("command:", " ".join([".venv/bin/python bench/vs_alertmanager.py", *sys.argv[1:]]))
    print()
    print(report(runs, alerts, one_by_one))


if __name__ == "__main__":
    main()
