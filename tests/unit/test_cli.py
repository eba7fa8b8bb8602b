"""`autoscaler run`'s process: what it sets up before its first round."""

from __future__ import annotations

import gc

from autoscaler.cli import GC_YOUNG, collect_less


def test_what_the_process_holds_from_start_up_is_left_out_of_the_collector_s_walks() -> None:
    threshold = gc.get_threshold()
    try:
        collect_less()
        assert gc.get_freeze_count() > 0
        # A round's objects, alive until the next round, are not walked again and again.
        assert gc.get_threshold()[0] == GC_YOUNG > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
