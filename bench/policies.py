"""Policy quality: the default policy against the Kubernetes HPA (`hpa`, its defaults) on every
trace through the simulator, with the same labels, in one table; `step` as a further baseline.

`actions`: scale actions. `under s`: seconds in which the ready replicas could not serve the
demand at the target; `lost s`: not even at full capacity (work was lost). `over r·s`:
replica-seconds beyond the needed count. `reach s`: after a rise, seconds until the needed
replicas were ready. Each figure beside its ratio to hpa's on the same trace, same run.

The promises, checked on every trace of the five families: no more actions than hpa, no more
under-provisioned seconds, at most 10 % more over-provisioning, and no action at all on a noisy
level load that starts at the count covering it.
"""

from __future__ import annotations

import math
from dataclasses import replace

from bench import traces
from policies import registry
from policies.simulator import Model, Summary, simulate

POLICIES = ("target-tracking", "hpa", "step")
LABELS = {"cpu.target": "50"}
MODEL = Model(maximum=12)
OVER_SLACK = 1.10


def run(model: Model = MODEL) -> dict[tuple[str, str], Summary]:
    results: dict[tuple[str, str], Summary] = {}
    for case in traces.CASES:
        start = model
        if case.covered:
            start = replace(model, initial=model.needed(_peak(case.trace, model.interval)))
        for name in POLICIES:
            policy, behavior = registry.build(name, LABELS)
            summary = simulate(case.trace, policy, start, behavior).summary
            assert summary is not None
            results[(case.name, name)] = summary
    return results


def _peak(trace: traces.Trace, interval: float) -> float:
    """The highest demand any report can show: the peak of the means over each interval."""
    windows: dict[int, list[float]] = {}
    for t, demand in trace:
        windows.setdefault(int(t // interval), []).append(demand)
    return max(sum(w) / len(w) for w in windows.values())


def _ratio(value: float, baseline: float) -> str:
    if baseline == 0:
        return "—" if value == 0 else "∞"
    return f"{value / baseline:.2f}x"


def table(results: dict[tuple[str, str], Summary]) -> str:
    head = (
        f"{'trace':<16} {'policy':<16} {'actions':>7} {'vs hpa':>7} {'under s':>8} {'vs hpa':>7} "
        f"{'lost s':>7} {'over r·s':>9} {'vs hpa':>7} {'reach s':>8}"
    )
    lines = [head, "-" * len(head)]
    for (trace_name, name), s in results.items():
        base = results[(trace_name, "hpa")]
        reach = "—" if s.reaction_s is None else f"{s.reaction_s:.0f}"
        lines.append(
            f"{trace_name:<16} {name:<16} {s.actions:>7} {_ratio(s.actions, base.actions):>7} "
            f"{s.under_provisioned_s:>8.0f} "
            f"{_ratio(s.under_provisioned_s, base.under_provisioned_s):>7} "
            f"{s.saturated_s:>7.0f} {s.over_provisioned_replica_s:>9.0f} "
            f"{_ratio(s.over_provisioned_replica_s, base.over_provisioned_replica_s):>7} "
            f"{reach:>8}"
        )
    return "\n".join(lines)


def promises(results: dict[tuple[str, str], Summary]) -> list[tuple[str, bool]]:
    """(what, kept) for each promise of the default policy, over every trace of each family."""
    out: list[tuple[str, bool]] = []
    for family in traces.FAMILIES:
        cases = [c for c in traces.CASES if c.family == family]
        worse: list[str] = []
        for case in cases:
            ours, hpa = results[(case.name, "target-tracking")], results[(case.name, "hpa")]
            if ours.actions > hpa.actions:
                worse.append(f"{case.name}: {ours.actions} actions vs {hpa.actions}")
            if ours.under_provisioned_s > hpa.under_provisioned_s:
                worse.append(f"{case.name}: under {ours.under_provisioned_s:.0f}s vs "
                             f"{hpa.under_provisioned_s:.0f}s")  # fmt: skip
            allowed = math.floor(hpa.over_provisioned_replica_s * OVER_SLACK)
            if ours.over_provisioned_replica_s > allowed:
                worse.append(f"{case.name}: over {ours.over_provisioned_replica_s:.0f} vs "
                             f"{hpa.over_provisioned_replica_s:.0f} r·s")  # fmt: skip
            if family == "noisy-level" and ours.actions:
                worse.append(f"{case.name}: {ours.actions} actions on a level load")
        names = ", ".join(c.name for c in cases)
        verdict = "; ".join(worse) if worse else "kept"
        out.append((f"{family} ({names}): {verdict}", not worse))
    return out


MODELS = {
    "5 s interval, 10 s start-up (a slow-starting application)": MODEL,
    "2 s interval, 1 s start-up (a container that serves as it starts)": Model(
        maximum=12, interval=2.0, startup=1.0
    ),
}


def main() -> None:
    for title, model in MODELS.items():
        results = run(model)
        print(f"\nPolicy quality (simulator: 1 core a replica, 50 % target, max 12; {title})")
        print(table(results))
        print(
            "Promises of the default policy against hpa: no more actions, no more "
            "under-provisioned seconds, at most 10 % more over-provisioning, no action on a noisy "
            "level load that starts covered:"
        )
        for line, kept in promises(results):
            print(f" * {'yes' if kept else 'NO '} {line}")


if __name__ == "__main__":
    main()
