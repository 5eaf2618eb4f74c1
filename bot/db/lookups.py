"""Where a SQLite look-up runs: on the event loop while the pages it needs are in memory, on
reader threads while look-ups are reading from the disk.

On the loop, a look-up of a millisecond costs less than two hops to a thread and back
(`/story` p50 32 against 64 ms with 20 requests in flight). But a look-up that has to read
from the disk waits for it there (~4 ms a page on the test VM's disk), and everything on the
loop waits with it: the look-ups queued behind it, and the alerts. With the page cache cold
(after a restart, or a quiet night in which the kernel gave the memory to something else),
`/story` p99 was ~2 s with 20 clients. On threads, the waits run side by side, the GIL
released by SQLite while it reads.

A look-up waited for the disk when its thread read blocks from it (getrusage's `ru_inblock`:
pages found in the page cache count nothing) and it took `SLOW` longer than its thread's CPU
time. Both: on a VM whose host caches the file, a block read can take 0.1 ms, which costs
the loop less than a thread hop would; and time alone would count a wait for the GIL. Where
the platform has no per-thread block count, look-ups stay on the loop.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

# How long after a look-up last read from the disk the next ones still go to the threads:
# long enough that a cold spell does not flip back to the loop between two cold reads.
WINDOW = 2.0
SLOW = 0.003  # seconds a look-up waited for the disk before the next ones go to the threads
READERS = 16  # look-ups reading from the disk at once (the disk queues more than one)
_THREAD = getattr(resource, "RUSAGE_THREAD", None)  # Linux


class Reading(NamedTuple):
    """A thread's counts at one moment: blocks read from the disk, wall and CPU seconds."""

    blocks: int
    wall: float
    cpu: float


def reading() -> Reading:
    """This thread's counts now (blocks 0 where the platform does not count them)."""
    blocks = 0 if _THREAD is None else resource.getrusage(_THREAD).ru_inblock
    return Reading(blocks, time.perf_counter(), time.thread_time())


@dataclass
class DiskReads:
    """When a look-up last read from the disk, and so where the next one runs."""

    clock: Callable[[], float] = time.monotonic
    last: float | None = field(default=None)

    def seen(self, before: Reading, after: Reading) -> None:
        """A look-up ran between `before` and `after` (its thread's counts)."""
        waited = (after.wall - before.wall) - (after.cpu - before.cpu)
        if after.blocks > before.blocks and waited > SLOW:
            self.last = self.clock()

    def on_loop(self) -> bool:
        return self.last is None or self.clock() - self.last > WINDOW
