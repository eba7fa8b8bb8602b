"""The short chaos run (bench/chaos; `make chaos` runs every fault and tables the recoveries):
kill -9 and SIGSTOP of the leader, `compose up -d`, the state directory full and the template
removed, each while a scale is under way, with the web service under load and jobs flowing
through the worker, and the user's `down` while scaled. The invariants, checked from the
engine's events and the broker, hold throughout (none of the jobs lost), and the service a
fault hit runs its count again after it (how soon is the bench's to say, on a quiet
machine)."""

from __future__ import annotations

import pytest

from bench.chaos import SHORT, chaos, table


# Alone: its web load, jobs and two autoscalers take most of both cores for two minutes, and the
# tests beside it that wait on a 1 s Prometheus scrape or a replica's start would time out on
# their own parts, not on ours.
@pytest.mark.alone
async def test_faults_while_it_scales_break_no_invariant_and_each_is_recovered_from(
    broker: tuple[str, int],
) -> None:
    results, watch = await chaos(SHORT, broker)
    assert not any(watch.violations.values()), (table(results), dict(watch.violations))
    stuck = [f"{r.fault}: {r.stuck}" for r in results if r.fault in SHORT and r.recovery is None]
    assert not stuck, (table(results), stuck)
