"""Rendering cost per message (issue 14): CPU µs per message, per kind, in this process.

Renders N distinct stories through `Renderer.render` (what the delivery workers call: the
stored story parsed, the item marked, the template rendered and fitted to Slack's limits, or
the email's three parts with CSS inlined and addressed) as: a Slack alert, a Slack batch of
10, an instant email alert and an instant email batch of 10. CPU time (`time.process_time`),
so that other work on the machine barely moves it. Run it against two checkouts in turn to
compare: `PYTHONPATH=<checkout> python bench/render.py [N] [--profile KIND]`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe
from bot.messages import Renderer
from bot.messages.kinds import Entry, Load
from bot.rules.reasons import Clause, target_clause, to_json
from tests.conftest import make_config

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
TOPICS = ["launch", "satellites", "procurement", "cyber", "missile-defense"]


def entry(n: int) -> Entry:
    """A stored story shaped like bench/vs_alertmanager.py's, distinct per `n`."""
    story_id = f"bench-{n:06d}"
    payload = {
        "id": story_id, "url": f"https://desk.example/bench/{story_id}",
        "title": f"Bench alert {story_id}: operator loses contact with satellite {n}",
        "scored_at": (NOW - timedelta(seconds=n % 600)).isoformat(), "impact": 9,
        "sentiment": "negative", "topics": [TOPICS[n % len(TOPICS)]],
        "sources": [{"outlet": "SpaceNews", "url": f"https://spacenews.example/{story_id}"},
                    {"outlet": "Reuters", "url": f"https://reuters.example/{story_id}"}],
        "key_takeaways": ["Operator confirms loss of contact"],
        "key_facts": ["Launched in 2024", "Serves three government customers"],
    }
    why = (Clause("impact", {"value": 9, "min": 8, "ok": True}),
           Clause("sources", {"value": 2, "min": 2, "ok": True}),
           target_clause("route", f"C0BENCH{n % 100:03d}", [TOPICS[n % len(TOPICS)]]))
    return Entry(story_id, "impact 9 ≥ 8", json.dumps(payload), to_json(why))


def renderer(tmp: Path) -> Renderer:
    config = make_config(tmp, "sqlite://", public_url="https://alerts.desk.example/")
    return Renderer(config, b"bench-key")


# kind label → (message kind, transport, target, stories a message)
KINDS: dict[str, tuple[str, str, str, int]] = {
    "slack alert": ("alert", "slack", "slack:C0BENCH000", 1),
    "slack batch of 10": ("batch", "slack", "slack:C0BENCH000", 10),
    "email alert": ("alert", "email", "email:reader@desk.example", 1),
    "email batch of 10": ("batch", "email", "email:reader@desk.example", 10),
}


def messages(label: str, count: int, start: int) -> list[Callable[[Renderer], Any]]:
    kind, transport, target, size = KINDS[label]
    loads = [Load([entry(start + m * size + i) for i in range(size)]) for m in range(count)]
    return [lambda r, load=load: r.render(kind, transport, target, None, load, NOW)
            for load in loads]


def measure(render: Renderer, label: str, count: int) -> float:
    """CPU µs per message of `label`, over `count` messages of distinct stories."""
    for make in messages(label, 20, 10_000_000):  # warm: templates compiled, caches filled
        make(render)
    todo = messages(label, count, 0)
    started = time.process_time()
    for make in todo:
        make(render)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=2000, help="messages per kind")
    parser.add_argument("--profile", choices=sorted(KINDS), help="cProfile this kind instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        render = renderer(Path(name))
        if args.profile:
            for make in messages(args.profile, 20, 10_000_000):
                make(render)
            todo = messages(args.profile, args.count, 0)
            profile = cProfile.Profile()
            profile.enable()
            for make in todo:
                make(render)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            return
        print(f"{describe()}; load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
        print(f"{args.count} messages per kind, CPU µs per message (time.process_time):")
        for label in KINDS:
            print(f"  {label:<18} {measure(render, label, args.count):8.0f}")


if __name__ == "__main__":
    main()
