"""Many stories with a realistic vocabulary, for scale tests and the look-up benchmark.

Titles draw words from a Zipf-like distribution over a few thousand synthetic words, so a
word search meets common words (thousands of matches) and rare ones (a handful), as on a desk.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

COMMON = ["satellite", "launch", "contract", "defense", "space", "force", "test", "orbit",
          "missile", "program", "agency", "budget", "radar", "sensor", "award", "delay"]


def vocabulary(size: int = 5000) -> list[str]:
    rng = random.Random(7)
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words = set(COMMON)
    while len(words) < size:
        words.add("".join(rng.choice(consonants) + rng.choice(vowels)
                          for _ in range(rng.randint(2, 4))))
    return sorted(words, key=lambda w: (w not in COMMON, w))


def lines(count: int, seed: int = 2026) -> Iterator[str]:
    """JSON Lines of `count` stories, scored over the last 30 days."""
    rng = random.Random(seed)
    words = vocabulary()
    # Zipf weights, accumulated once: random.choices would redo it on every call.
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    now = datetime.now(UTC)
    for n in range(count):
        title = " ".join(rng.choices(words, cum_weights=cumulative, k=8)).capitalize()
        facts = [" ".join(rng.choices(words, cum_weights=cumulative, k=10)) for _ in range(2)]
        yield json.dumps({
            "id": f"s{n:07d}", "url": f"https://desk.example/s/{n}", "title": title,
            "scored_at": (now - timedelta(seconds=rng.randint(60, 30 * 86400))).isoformat(),
            "impact": rng.choice([5, 6, 7, 8, 9]), "sentiment": "neutral",
            "topics": [rng.choice(["launch", "satellites", "cyber", "budget"])],
            "sources": [{"outlet": "SpaceNews"}, {"outlet": rng.choice(["Reuters", "AP"])}],
            "key_facts": facts,
        })


def title_of(line: str) -> str:
    return str(json.loads(line)["title"])
