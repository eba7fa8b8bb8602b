"""A load step that holds every replica at its CPU limit, on the real engine: the default policy
sees the throttling and grows the service every decision to what it needs, without overshoot and
without a scale-down after it. Orders and bounds, not timings (those are in bench/reaction.py)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from tests.integration.conftest import Load, Mqtt, events, reaches, states, states_after

# 0.1 CPU a replica at a 50 % target carries 50 millicores: 500 need 10 replicas. Each of the
# first 2 is asked for 250, two and a half times its limit.
LABELS = {
    "autoscaler.enable": "true",
    "autoscaler.min": "2",
    "autoscaler.max": "20",
    "autoscaler.cpu.target": "50",
}
NEEDED = 10


async def two_replicas(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    *,
    env: dict[str, str] | None = None,
    **settings: Any,
) -> Load:
    """The service's 2 replicas, as Compose made them (no start-up action to count against the
    rate), the autoscaler on them, and the count seen; the load they share."""
    load = make_load("web")
    for number in (1, 2):
        await make_container("web", LABELS, load=load, number=number, cpus=0.1, env=env)
    await run_autoscaler(**settings)
    await reaches(mqtt, project, "web", 2, hold=2)
    return load


@pytest.mark.alone  # what replicas carry: a busy host starves them, and they settle short
async def test_a_saturated_service_grows_every_decision_to_its_need_and_no_further(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load = await two_replicas(make_container, make_load, run_autoscaler, mqtt, project)
    load.set(500)

    def settled(m: Mqtt) -> bool:
        # Five rounds in a row at the need, or one past it (the most it may overshoot).
        last = [s["replicas"] for s in states(m, project, "web")[-5:]]
        return len(last) == 5 and len(set(last)) == 1 and last[0] in (NEEDED, NEEDED + 1)

    try:
        await mqtt.wait_for(settled, within=60)
    except TimeoutError:
        seen = [(s["replicas"], s["reason"][:80]) for s in states(mqtt, project, "web")[-8:]]
        pytest.fail(f"never five rounds in a row at {NEEDED} or {NEEDED + 1}: the last {seen}")
    ups = events(mqtt, project, "web", "scale_up")
    steps = [(e["from"], e["to"]) for e in ups]
    # Each action starts where the last ended, and only ever grows.
    assert all(a[1] == b[0] for a, b in itertools.pairwise(steps)), steps
    assert all(to > start for start, to in steps), steps
    # The first decision saw the 2 held at their limit and went past what the calculation can
    # see from 2 pegged replicas (4): the throttling says they need more.
    assert ups[0]["reason"].startswith("saturated: 2 of 2 replicas held at their CPU limit")
    assert ups[0]["to"] >= 4
    # The HPA's rate would have allowed 2 -> 6 -> 10 over two 15 s periods at best; each
    # decision here may grow again, and it needs no more than four to get there.
    assert len(steps) <= 4, steps
    # Never more than one past the need, never back down.
    assert max(to for _, to in steps) <= NEEDED + 1
    assert not events(mqtt, project, "web", "scale_down")


@pytest.mark.alone  # what replicas carry: other tests' load on the host would starve them
async def test_the_step_after_a_saturated_growth_waits_for_the_load_to_reach_the_new_replicas(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # New replicas take load half a second after they start (a slow start, or a balancer that
    # finds them late); until then the old ones keep theirs. A window that began as the action
    # ended would see the three new ones idle most of it, and the next step fall short of 10.
    load = await two_replicas(make_container, make_load, run_autoscaler, mqtt, project,
                              env={"WARMUP": "50"})  # fmt: skip
    load.set(600)  # 12 replicas' worth: at 5, each is asked for more than its limit
    ups = await mqtt.wait_for(
        lambda m: (found := events(m, project, "web", "scale_up"))[1:] and found, within=30
    )
    (first, second) = ((e["from"], e["to"]) for e in ups[:2])
    assert first[0] == 2 and first[1] in (4, 5), ups[0]["reason"]
    # The next step waits until the new ones take their share: then every replica is held at
    # its limit (600 asked of 4 or 5), and the floor at 50 % is at least twice the count.
    # Decided on their first moments, it would be little more than the old ones' 200 % gives.
    assert second[0] == first[1] and second[1] >= 2 * first[1], ups[1]["reason"]
    assert f"{first[1] - 2} new ones taking on their share" in ups[1]["reason"]


@pytest.mark.alone  # what replicas carry: other tests' load on the host would starve them
async def test_replicas_held_at_their_limit_since_the_round_are_acted_on_before_the_next(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # At a 6 s interval a window measures from 3.6 s on. The load rises just after a round: the
    # Compose backend's watch reads the counters once they measure and looks at the service
    # then, about 2.3 s before the next round would have.
    load = await two_replicas(make_container, make_load, run_autoscaler, mqtt, project,
                              interval=6.0)  # fmt: skip
    (round_,) = await states_after(mqtt, project, "web", time.time(), 1, within=10)
    load.set(500)
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=15)
    after = ups[0]["timeNano"] / 1e9 - round_["time"]
    assert ups[0]["reason"].startswith("saturated: 2 of 2 replicas held at their CPU limit")
    assert 3.6 < after < 5.0, f"acted on {after:.2f}s after the round; the next comes at 6 s"
