"""The `hpa` reference against the HPA's own replica calculation, rule by rule.

Upstream: kubernetes `pkg/controller/podautoscaler/replica_calculator.go`. `GetResourceReplicas`
sizes on a utilisation (CPU, memory: percent of a limit here, of a request there);
`calcPlainMetricReplicas` on a value each pod carries (pods metrics, raw resource values). Both:

    scaleUpWithUnready := len(unreadyPods) > 0 && usageRatio > 1.0
    if !scaleUpWithUnready && len(missingPods) == 0 { tolerance, else ceil(ratio * ready) }
    missing, usageRatio < 1.0: resource requests[pod] * max(100, target) / 100; plain targetUsage
    missing, usageRatio > 1.0: 0
    scaleUpWithUnready: unready at 0 (else they are left out)
    tolerances.isWithin(newUsageRatio) || (usageRatio < 1.0 && newUsageRatio > 1.0)
        || (usageRatio > 1.0 && newUsageRatio < 1.0): currentReplicas
    newReplicas := ceil(newUsageRatio * len(metrics)), held at currentReplicas if it moves
        against newUsageRatio

Filling the idle in at 0 going up keeps the total, so the count only changes through the holds:
each row below is built so that breaking its rule changes the answer.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import registry
from policies.base import PolicyInput, Proposal, ReplicaSample
from policies.replicas import Groups, assumed_missing, group, replica_count

RESOURCE, PLAIN = "resource", "plain"


def hpa_count(
    values: list[float],
    current: int,
    *,
    unready: int = 0,
    missing: int = 0,
    kind: str = RESOURCE,
    target: float = 50.0,
) -> int:
    """One metric's count under the HPA's rules: unready replicas never hold a scale-down."""
    ready = tuple(ReplicaSample(f"r{i}", v) for i, v in enumerate(values))
    return replica_count(
        values, target, current, Groups(ready, unready, missing, {}),
        up_tolerance=0.1, down_tolerance=0.1,
        missing_down=assumed_missing(target, resource=kind == RESOURCE),
        hold_while_unready=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sample", "cpu", "other"),
    [
        pytest.param(ReplicaSample("a", 40.0), "ready", "ready", id="ready"),
        pytest.param(ReplicaSample("a", 40.0, ready=False, note="health starting"), "unready",
                     "ready", id="not-ready-with-a-sample"),
        pytest.param(ReplicaSample("a", 40.0, started_at=95.0), "unready", "ready",
                     id="warming-up-with-a-sample"),
        pytest.param(ReplicaSample("a", None, ready=False, note="starting"), "unready", "unready",
                     id="not-ready-without-a-sample"),
        pytest.param(ReplicaSample("a", None), "missing", "missing", id="ready-without-a-sample"),
        pytest.param(ReplicaSample("a", None, started_at=95.0), "unready", "missing",
                     id="warming-up-without-a-sample"),
    ],
)  # fmt: skip
def test_readiness_and_the_warm_up_count_for_cpu_alone(
    sample: ReplicaSample, cpu: str, other: str
) -> None:
    # groupPods: `if resource == v1.ResourceCPU` { unready within cpuInitializationPeriod or
    # not ready }; for any other metric a pod with a metric is ready, one without is missing
    # (or unready while Pending).
    def kind(groups: Groups) -> str:
        return "ready" if groups.ready else "unready" if groups.unready else "missing"

    inputs = PolicyInput(1, 1, 20, (sample,), 100.0)
    assert kind(group(inputs, 10.0)) == cpu
    assert kind(group(inputs, 10.0, readiness=False)) == other


@pytest.mark.parametrize(
    ("target", "resource", "assumed"),
    [
        pytest.param(50.0, True, 100.0, id="resource-at-its-full-limit"),
        pytest.param(100.0, True, 100.0, id="resource-target-at-the-limit"),
        pytest.param(200.0, True, 200.0, id="resource-target-above-the-limit-at-the-target"),
        pytest.param(50.0, False, 50.0, id="plain-at-the-target"),
        pytest.param(200.0, False, 200.0, id="plain-above-100-still-the-target"),
    ],
)
def test_what_a_missing_replica_is_assumed_at_going_down(
    target: float, resource: bool, assumed: float
) -> None:
    # GetResourceReplicas: fallbackUtilization := max(100, targetUtilization);
    # calcPlainMetricReplicas: metrics[podName] = PodMetric{Value: targetUsage}.
    assert assumed_missing(target, resource=resource) == assumed


@pytest.mark.parametrize(
    ("values", "current", "unready", "missing", "kind", "target", "desired"),
    [
        # !scaleUpWithUnready && len(missingPods) == 0: ceil(usageRatio * readyPodCount),
        # or currentReplicas when tolerances.isWithin(usageRatio).
        pytest.param([80.0, 80.0], 2, 0, 0, RESOURCE, 50.0, 4, id="all-present-up"),
        pytest.param([20.0] * 3, 3, 0, 0, RESOURCE, 50.0, 2, id="all-present-down"),
        pytest.param([54.0] * 3, 3, 0, 0, RESOURCE, 50.0, 3, id="all-present-within-tolerance-holds"),
        # Unready, usageRatio <= 1: scaleUpWithUnready is false, they are left out: ceil(0.4 * 2).
        # (At the target (40 + 50) / 150 -> 2; at the limit 140 / 150 holds; at 0 the count is
        # the same, see missing-and-unready-going-down.)
        pytest.param([20.0, 20.0], 3, 1, 0, RESOURCE, 50.0, 1, id="unready-left-out-going-down"),
        # Unready, usageRatio > 1: at 0 ("treat unready pods as using 0%"); 162 / 150 = 1.08
        # is within the tolerance (left out: ceil(1.62 * 2) = 4).
        pytest.param([81.0, 81.0], 3, 1, 0, RESOURCE, 50.0, 3, id="unready-idle-going-up-within-holds"),
        # ... and 120 / 200 = 0.6 flips a scale-up into a scale-down:
        # (usageRatio > 1.0 && newUsageRatio < 1.0) holds (without it: ceil(0.6 * 4) = 3).
        pytest.param([60.0, 60.0], 4, 2, 0, RESOURCE, 50.0, 4, id="unready-idle-flip-from-above-holds"),
        # Missing, usageRatio > 1: at 0. 200 / 150 -> ceil(4) (at the target it would be 5).
        pytest.param([100.0, 100.0], 3, 0, 1, RESOURCE, 50.0, 4, id="missing-idle-going-up"),
        # 160 / 150 = 1.07 within (left out: ceil(1.6 * 2) = 4; at the target 5).
        pytest.param([80.0, 80.0], 3, 0, 1, RESOURCE, 50.0, 3, id="missing-idle-going-up-within-holds"),
        pytest.param([60.0, 60.0], 4, 0, 2, RESOURCE, 50.0, 4, id="missing-idle-flip-from-above-holds"),
        pytest.param([60.0, 60.0], 4, 0, 2, PLAIN, 50.0, 4, id="plain-missing-idle-flip-from-above-holds"),
        # Missing, usageRatio < 1, a utilisation: at max(100, target). (80 + 100) / 250 -> 4;
        # at the target (the plain rule) (80 + 50) / 250 -> 3.
        pytest.param([20.0] * 4, 5, 0, 1, RESOURCE, 50.0, 4, id="resource-missing-at-the-limit-going-down"),
        pytest.param([20.0] * 4, 5, 0, 1, PLAIN, 50.0, 3, id="plain-missing-at-the-target-going-down"),
        # The limit outweighs the idle: 200 / 150 = 1.33, below 1 before and above after:
        # (usageRatio < 1.0 && newUsageRatio > 1.0) holds (without it: ceil(1.33 * 3) = 4).
        # At the target no flip can happen: 100 / 150 -> 2.
        pytest.param([0.0], 3, 0, 2, RESOURCE, 50.0, 3, id="resource-missing-flip-from-below-holds"),
        pytest.param([0.0], 3, 0, 2, PLAIN, 50.0, 2, id="plain-missing-cannot-flip"),
        # Target above the limit: max(100, 200) = 200. 600 / 800 -> 3 (at 100 it would be 2).
        pytest.param([0.0], 4, 0, 3, RESOURCE, 200.0, 3, id="resource-missing-at-a-target-above-the-limit"),
        # tolerances.isWithin(newUsageRatio): (720 + 200) / 1000 = 0.92 holds at 20 (ceil 19
        # without the check); the plain rule: (720 + 100) / 1000 -> 17.
        pytest.param([40.0] * 18, 20, 0, 2, RESOURCE, 50.0, 20, id="resource-missing-down-within-holds"),
        pytest.param([40.0] * 18, 20, 0, 2, PLAIN, 50.0, 17, id="plain-missing-down-past-the-tolerance"),
        # (320 + 600) / 1000 = 0.92 holds at 20 (ceil 19 without the check).
        pytest.param([40.0] * 8, 20, 0, 12, PLAIN, 50.0, 20, id="plain-missing-down-within-holds"),
        # usageRatio == 1: neither branch fills the missing in; 1.0 is within: hold. (Filled in
        # at the limit: 300 / 200 -> 6.)
        pytest.param([50.0, 50.0], 4, 0, 2, RESOURCE, 50.0, 4, id="at-the-target-missing-left-out"),
        # Both going up, both at 0: 220 / 200 = 1.1 within (either left out: 5).
        pytest.param([110.0, 110.0], 4, 1, 1, RESOURCE, 50.0, 4, id="missing-and-unready-going-up-within-holds"),
        # Going down: unready left out, missing at the limit: 140 / 150 = 0.93 within (unready at
        # 0: 140 / 200 -> 3); at the target (40 + 50) / 150 -> 2.
        pytest.param([20.0, 20.0], 4, 1, 1, RESOURCE, 50.0, 4, id="missing-and-unready-going-down"),
        pytest.param([20.0, 20.0], 4, 1, 1, PLAIN, 50.0, 2, id="plain-missing-and-unready-going-down"),
        # newReplicas < currentReplicas with newUsageRatio > 1: currentReplicas.
        pytest.param([100.0, 100.0], 6, 0, 1, RESOURCE, 50.0, 6, id="a-scale-up-never-below-current"),
    ],
)  # fmt: skip
def test_the_hpa_replica_calculation(
    values: list[float], current: int, unready: int, missing: int, kind: str, target: float,
    desired: int,
) -> None:  # fmt: skip
    got = hpa_count(values, current, unready=unready, missing=missing, kind=kind, target=target)
    assert got == desired


@given(
    values=st.lists(st.integers(0, 400), min_size=1, max_size=12),
    unready=st.integers(0, 6),
    missing=st.integers(0, 6),
    target=st.sampled_from([20.0, 50.0, 80.0, 100.0, 150.0]),
    kind=st.sampled_from([RESOURCE, PLAIN]),
)
def test_the_count_never_moves_against_the_ready_replicas_ratio(
    values: list[int], unready: int, missing: int, target: float, kind: str
) -> None:
    # Every hold in GetResourceReplicas / calcPlainMetricReplicas exists so that replicas without
    # a say cannot turn the ready replicas' direction around.
    readings = [float(v) for v in values]
    current = len(readings) + unready + missing
    ratio = sum(readings) / len(readings) / target
    got = hpa_count(readings, current, unready=unready, missing=missing, kind=kind, target=target)
    if ratio > 1:
        assert got >= current
    elif ratio < 1:
        assert got <= current
    else:
        assert got == current


@given(
    values=st.lists(st.integers(0, 100), min_size=1, max_size=12),
    unready=st.integers(0, 6),
    missing=st.integers(1, 6),
    target=st.sampled_from([20.0, 50.0, 80.0]),
)
def test_the_resource_rule_never_proposes_fewer_than_the_plain_one(
    values: list[int], unready: int, missing: int, target: float
) -> None:
    # max(100, target) >= target: a missing replica assumed at its limit holds more back.
    readings = [float(v) for v in values]
    current = len(readings) + unready + missing
    counts = {
        kind: hpa_count(readings, current, unready=unready, missing=missing, kind=kind,
                        target=target)
        for kind in (RESOURCE, PLAIN)
    }  # fmt: skip
    assert counts[RESOURCE] >= counts[PLAIN]


# The policies themselves: `hpa` follows GetResourceReplicas for CPU and memory, target tracking
# keeps assuming a missing replica at the target (and holds any scale-down while one is unready).


def propose(policy: str, labels: dict[str, str], current: int, *samples: ReplicaSample) -> Proposal:
    chosen, _ = registry.build(policy, labels)
    return chosen.propose(PolicyInput(current, 1, 20, samples, 100.0))


CPU = {"cpu.target": "50"}
CPU_AND_MEMORY = {"cpu.target": "50", "memory.target": "40"}
missing = ReplicaSample("new", None)


@pytest.mark.parametrize(
    ("labels", "current", "samples", "hpa", "target_tracking"),
    [
        # cpu 20 % on 4, one without a reading: (80 + 100) / 250 -> 4; at the target -> 3.
        pytest.param(CPU, 5, (*(ReplicaSample(f"c{i}", 20.0) for i in range(4)), missing), 4, 3,
                     id="cpu-missing-at-the-limit"),
        # One idle, two without readings (one sent none at all): 200 / 150 flips, hold.
        pytest.param(CPU, 3, (ReplicaSample("c", 0.0), missing), 3, 2, id="cpu-flip-from-below-holds"),
        # CPU idle asks for 2 (hpa) / 1; memory 10 % of a 40 % target on 4, one missing:
        # (40 + 100) / 200 -> 4 (hpa) / (40 + 40) / 200 -> 2. Memory is a utilisation too.
        pytest.param(CPU_AND_MEMORY, 5,
                     (*(ReplicaSample(f"c{i}", 0.0, memory=10.0) for i in range(4)), missing), 4, 2,
                     id="memory-missing-at-the-limit"),
        # A starting replica with a reading: left out going down by the hpa; target tracking
        # holds while it is unready.
        pytest.param(CPU, 3, (ReplicaSample("a", 20.0), ReplicaSample("b", 20.0),
                              ReplicaSample("s", 90.0, ready=False, note="health starting")), 1, 3,
                     id="unready-left-out-going-down"),
        # Memory heeds no readiness in the HPA: the starting replica's 30 % counts, 50 / 120 ->
        # 2 (left out: 20 / 80 -> 1); CPU, all idle, asks for none.
        pytest.param(CPU_AND_MEMORY, 3,
                     (ReplicaSample("a", 0.0, memory=10.0), ReplicaSample("b", 0.0, memory=10.0),
                      ReplicaSample("s", 0.0, memory=30.0, ready=False, note="health starting")),
                     2, 3, id="memory-counts-a-not-ready-replica"),
        pytest.param(CPU_AND_MEMORY | {"warmup": "10s"}, 3,
                     (ReplicaSample("a", 0.0, memory=10.0), ReplicaSample("b", 0.0, memory=10.0),
                      ReplicaSample("w", 0.0, memory=30.0, started_at=95.0)),
                     2, 3, id="memory-counts-a-warming-replica"),
    ],
)  # fmt: skip
def test_hpa_and_target_tracking_on_replicas_without_a_say(
    labels: dict[str, str], current: int, samples: tuple[ReplicaSample, ...], hpa: int,
    target_tracking: int,
) -> None:  # fmt: skip
    assert propose("hpa", labels, current, *samples).count == hpa
    assert propose("target-tracking", labels, current, *samples).count == target_tracking


def test_the_reason_counts_the_replicas_the_deciding_metric_counted() -> None:
    starting = ReplicaSample("s", 0.0, memory=30.0, ready=False, note="health starting")
    samples = (ReplicaSample("a", 0.0, memory=10.0), ReplicaSample("b", 0.0, memory=10.0), starting)
    got = propose("hpa", CPU_AND_MEMORY, 3, *samples)
    assert got.reason == "memory 16.7% vs target 40% over 3 ready of 3: propose 2"
    assert got.ignored == {"s": "health starting"}  # by CPU, where readiness counts
