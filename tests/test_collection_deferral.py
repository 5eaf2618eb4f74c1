"""The garbage collector's thresholds while a batch is parsed and stored, and after."""

from __future__ import annotations

import gc

from bot.stories.parsing import YOUNG_DEFERRED, full_collections_deferred


def test_young_and_full_collections_wait_for_the_batch_then_come_back() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with full_collections_deferred():
            assert gc.get_threshold() == (YOUNG_DEFERRED, 10, 1_000_000)
            with full_collections_deferred():  # a nested user shares the deferral
                assert gc.get_threshold() == (YOUNG_DEFERRED, 10, 1_000_000)
            assert gc.get_threshold() == (YOUNG_DEFERRED, 10, 1_000_000)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(50_000, 10, 10)  # a larger young threshold is never lowered
        with full_collections_deferred():
            assert gc.get_threshold() == (50_000, 10, 1_000_000)
        assert gc.get_threshold() == (50_000, 10, 10)
    finally:
        gc.set_threshold(*before)
