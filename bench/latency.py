"""Push → chat.postMessage latency through a real `alertbot run` (issue 2's benchmark).

One story at a time is pushed to POST /api/stories; the clock stops when the local Slack server
receives the matching chat.postMessage. batch_window 0 and pacing off, so what is measured is
the pipeline: parse, store, evaluate, outbox write, worker wake-up, claim, render, send, record.
Prints p50/p90/p99 and the service's peak RSS. Usage: python bench/latency.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, peak_rss_mb, percentile
from tests.fakes import FakeSlack
from tests.process import INGEST_TOKEN, Alertbot

CONFIG = """
[slack]
pacing = "0s"
batch_window = "0s"

[[slack.routes]]
channel = "C0BENCH"
"""


def story(n: int) -> dict[str, object]:
    return {
        "id": f"bench-{n}", "url": f"https://desk.example/bench/{n}",
        "title": f"Benchmark story {n}", "scored_at": datetime.now(UTC).isoformat(),
        "impact": 9, "sentiment": "negative", "topics": ["launch"],
        "sources": [{"outlet": "SpaceNews"}, {"outlet": "Reuters"}],
        "key_takeaways": ["One", "Two"], "key_facts": ["A", "B", "C"],
    }



def main(count: int = 600) -> None:
    slack = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        bot = Alertbot.make(Path(tmp), CONFIG, slack.url).start()
        try:
            client = httpx.Client(headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
            warmup = 20
            latencies: list[float] = []
            for n in range(count + warmup):
                started = time.monotonic()
                answer = client.post(f"{bot.url}/api/stories", json=story(n))
                assert answer.status_code == 202, answer.text
                [*_, last] = slack.wait_for_posts(n + 1, timeout=10)
                assert f"Benchmark story {n}" in last.body["text"]
                if n >= warmup:
                    latencies.append((last.at - started) * 1000)
            assert bot.process is not None
            rss = peak_rss_mb(bot.process.pid)
        finally:
            bot.stop()
            slack.stop()
    print(describe())
    print(f"push → chat.postMessage, {count} stories one at a time (after {warmup} warm-up):")
    print(f"  p50 {percentile(latencies, 50):.2f} ms · p90 {percentile(latencies, 90):.2f} ms"
          f" · p99 {percentile(latencies, 99):.2f} ms · max {max(latencies):.2f} ms")
    print(f"  peak RSS of alertbot run: {rss:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
