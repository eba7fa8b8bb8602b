"""Policy quality: every policy on every trace through the simulator, one table.

Columns are absolute (scale actions, seconds) and, where a baseline makes sense, the ratio to
`hpa` (the Kubernetes defaults) on the same trace in the same run. `under s`: seconds the ready
replicas could not serve the demand at the target; `lost s`: not even at full capacity;
`over r·s`: replica-seconds beyond the needed count; `reach s`: after a step up, seconds until the
needed replicas were ready. The last lines check the
default policy's promises: never more actions than hpa, none on noisy-flat load, and the needed
replicas ready within one interval plus the start-up delay after a step.
"""

from __future__ import annotations

from bench import traces
from policies import registry
from policies.simulator import Model, Summary, simulate

POLICIES = ("target-tracking", "hpa", "step")
LABELS = {"cpu.target": "50"}


def run(model: Model | None = None) -> dict[tuple[str, str], Summary]:
    model = model or Model(maximum=12)
    results: dict[tuple[str, str], Summary] = {}
    for trace_name, make in traces.ALL.items():
        trace = make()
        for name in POLICIES:
            policy, behavior = registry.build(name, LABELS)
            summary = simulate(trace, policy, model, behavior).summary
            assert summary is not None
            results[(trace_name, name)] = summary
    return results


def _ratio(value: float, baseline: float) -> str:
    if baseline == 0:
        return "—" if value == 0 else "∞"
    return f"{value / baseline:.2f}x"


def table(results: dict[tuple[str, str], Summary]) -> str:
    head = (
        f"{'trace':<11} {'policy':<16} {'actions':>7} {'vs hpa':>7} {'under s':>8} "
        f"{'lost s':>7} {'over r·s':>9} {'vs hpa':>7} {'reach s':>8}"
    )
    lines = [head, "-" * len(head)]
    for (trace_name, name), s in results.items():
        base = results[(trace_name, "hpa")]
        reach = "—" if s.reaction_s is None else f"{s.reaction_s:.0f}"
        lines.append(
            f"{trace_name:<11} {name:<16} {s.actions:>7} {_ratio(s.actions, base.actions):>7} "
            f"{s.under_provisioned_s:>8.0f} {s.saturated_s:>7.0f} "
            f"{s.over_provisioned_replica_s:>9.0f} "
            f"{_ratio(s.over_provisioned_replica_s, base.over_provisioned_replica_s):>7} "
            f"{reach:>8}"
        )
    return "\n".join(lines)


def promises(results: dict[tuple[str, str], Summary], model: Model | None = None) -> list[str]:
    model = model or Model()
    default, out = "target-tracking", []
    worse = [t for t in traces.ALL if results[(t, default)].actions > results[(t, "hpa")].actions]
    out.append(f"no more actions than hpa on every trace: {'yes' if not worse else worse}")
    noisy = results[("noisy-flat", default)].actions
    out.append(f"actions on noisy-flat load: {noisy} ({'yes' if noisy == 0 else 'NO'})")
    reach = results[("step", default)].reaction_s
    bound = model.interval + model.startup
    ok = reach is not None and reach <= bound
    out.append(f"step reached in {reach}s, bound {bound:g}s ({'yes' if ok else 'NO'})")
    return out


def main() -> None:
    results = run()
    print("Policy quality (simulator: 1 core a replica, 50 % target, 5 s interval, 10 s start-up)")
    print(table(results))
    for line in promises(results):
        print(" *", line)


if __name__ == "__main__":
    main()
