"""`autoscaler run`'s process: what it sets up before its first round."""

from __future__ import annotations

import gc

from autoscaler.cli import GC_YOUNG, collect_less, collected_after


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


def test_a_round_runs_with_the_collector_off_and_what_it_owes_is_collected_after_it() -> None:
    collections: list[int] = []

    def told(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    threshold = gc.get_threshold()
    gc.callbacks.append(told)
    try:
        gc.set_threshold(100, 10, 10)
        with collected_after():
            # A round's worth of objects, far more than a young generation holds.
            held = [[i] for i in range(5_000)]
            assert collections == [] and not gc.isenabled()
        assert gc.isenabled()
        more = [[i] for i in range(200)]  # the first allocations after the round
        assert collections, "what the round allocated is collected once it is over"
        del held, more
    finally:
        gc.callbacks.remove(told)
        gc.set_threshold(*threshold)


def test_a_collector_that_was_off_stays_off_after_a_round() -> None:
    gc.disable()
    try:
        with collected_after():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
