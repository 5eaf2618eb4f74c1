"""Where a SQLite look-up runs: on the event loop while the pages it needs are in memory, on
reader threads while look-ups keep waiting for the disk.

On the loop, a look-up of a millisecond costs less than two hops to a thread and back
(`/story` p50 32 against 64 ms with 20 requests in flight). But a look-up that has to read
from the disk waits for it there (~4 ms a page on the test VM's disk), and everything on the
loop waits with it: the look-ups queued behind it, and the alerts. With the page cache cold
(after a restart, or a quiet night in which the kernel gave the memory to something else),
`/story` p99 was ~2 s with 20 clients. On threads, the waits run side by side, the GIL
released by SQLite while it reads.

A look-up is slow when its thread read blocks from the disk (getrusage's `ru_inblock`: pages
found in the page cache count nothing) and it took `SLOW` longer than its thread's CPU time.
Both: on a VM whose host caches the file, a block read can take 0.1 ms, which costs the loop
less than a thread hop would; and time alone would count a wait for the GIL. That is also
why only look-ups on the loop decide: on a thread, waiting for the GIL (16 readers and the
loop taking turns) would make fast reads look slow, and the threads would keep look-ups a
warm desk had better run on the loop. So after `STAY` look-ups on the threads, they come
back to the loop to be judged afresh; a spell still cold sends them out again after `SLOWS`.
Where the platform has no per-thread block count, look-ups stay on the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

try:
    import resource
except ImportError:  # not on Windows: look-ups then stay on the loop
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
SLOW = 0.003  # seconds a look-up waited for the disk to count as slow
# Of the last `RECENT` look-ups on the loop, this many slow ones send the next to the threads:
# most look-ups of a cold spell are slow; in a warm one, a slow read now and then (a page
# the disk's own cache on the host did not hold) stays on the loop, where threads would cost
# every look-up more (each reader's connection fills its own page cache, and the GIL
# changes hands).
RECENT, SLOWS = 20, 8
STAY = 500  # look-ups on the threads before the loop judges again (minutes: the delivery
# loop alone asks one a second)
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
    """Which of the last look-ups on the loop waited for the disk, and so where the next one
    runs; on the threads, how many have run there since."""

    slow: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT))
    on_threads: int | None = None  # look-ups run on the threads since they went there
    _lock: threading.Lock = field(default_factory=threading.Lock)  # readers report at once

    def seen(self, before: Reading, after: Reading, on_loop: bool) -> None:
        """A look-up ran between `before` and `after` (its thread's counts), on the loop or
        on a reader thread."""
        with self._lock:
            if not on_loop:
                if self.on_threads is None:  # it started before they came back: not judged
                    return
                self.on_threads += 1
                if self.on_threads >= STAY:
                    self.on_threads = None
                    self.slow.clear()
                    log.info("look-ups back on the event loop after %s on reader threads, "
                             "to see whether they still wait for the disk", STAY)
                return
            if self.on_threads is not None:  # went to the threads while it ran
                return
            waited = (after.wall - before.wall) - (after.cpu - before.cpu)
            self.slow.append(after.blocks > before.blocks and waited > SLOW)
            count = sum(self.slow)
            if count >= SLOWS:
                self.on_threads = 0
                log.info("look-ups on reader threads: %s of the last %s waited for the disk",
                         count, len(self.slow))

    def on_loop(self) -> bool:
        return self.on_threads is None
