"""`autoscaler simulate`: replay a trace through policies and write the timeline and a plot.

The simulation itself is `policies.simulator` (pure); this module reads and writes the files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from policies import registry
from policies.simulator import Model, Result, read_trace, simulate, write_timeline
from policies.zero import ZeroRule

logger = logging.getLogger(__name__)


def run(
    trace_path: Path,
    policies: Sequence[str],
    labels: Mapping[str, str],
    model: Model,
    out_dir: Path,
) -> dict[str, Result]:
    trace = read_trace(trace_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Result] = {}
    for name in policies:
        policy, behavior = registry.build(name, labels)
        # `--min 0`: the demand is also the metric that puts the service to sleep and wakes it.
        options = getattr(policy, "options", None)
        zero = ZeroRule.of(behavior, options) if model.minimum == 0 else None
        result = simulate(trace, policy, replace(model, zero=zero), behavior)
        results[name] = result
        (out_dir / f"{trace_path.stem}-{name}.csv").write_text(write_timeline(result.timeline))
    plot(results, out_dir / f"{trace_path.stem}.png", title=trace_path.stem)
    return results


def check(policies: Sequence[str], labels: Mapping[str, str]) -> None:
    """Every label must be one some policy understands, and valid for each that does: a typo
    is an error, not a label every policy quietly ignores."""
    known = set(registry.BEHAVIOR_KEYS)
    for name in policies:
        known |= registry.option_keys(name)
        registry.build(name, labels)
    for key, value in labels.items():
        if key not in known:
            raise registry.PolicyError(
                key, value, f"no policy here knows it ({', '.join(policies)})"
            )


def summaries(results: Mapping[str, Result]) -> dict[str, dict[str, float | int | None]]:
    """The summary of each policy, for `--json`."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name, result in results.items():
        s = result.summary
        assert s is not None
        out[name] = {
            "actions": s.actions,
            "under_provisioned_s": s.under_provisioned_s,
            "lost_s": s.saturated_s,
            "over_provisioned_replica_s": s.over_provisioned_replica_s,
            "time_to_needed_s": s.reaction_s,
        }
    return out


def summary_table(results: Mapping[str, Result]) -> str:
    head = (
        f"{'policy':<16} {'actions':>7} {'under-provisioned s':>20} {'lost s':>7} "
        f"{'over-provisioned replica·s':>27} {'time to needed s':>17}"
    )
    lines = [head, "-" * len(head)]
    for name, result in results.items():
        s = result.summary
        assert s is not None
        reach = "—" if s.reaction_s is None else f"{s.reaction_s:.0f}"
        lines.append(
            f"{name:<16} {s.actions:>7} {s.under_provisioned_s:>20.0f} {s.saturated_s:>7.0f} "
            f"{s.over_provisioned_replica_s:>27.0f} {reach:>17}"
        )
    return "\n".join(lines)


def plot(results: Mapping[str, Result], path: Path, *, title: str) -> None:
    """Demand (as the needed count) and each policy's replicas over time, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning(
            "matplotlib is not installed: no plot (pip install 'compose-autoscaler[plot]')"
        )
        return
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    first = next(iter(results.values()))
    times = [row.t for row in first.timeline]
    axes.fill_between(
        times, [row.needed for row in first.timeline], step="post", alpha=0.2, label="needed"
    )
    # The policy under study is drawn last and widest, on top of the references.
    for width, (name, result) in reversed(list(enumerate(results.items()))):
        replicas = [row.replicas for row in result.timeline]
        axes.step(times, replicas, where="post", label=name, linewidth=2.5 if width == 0 else 1.2)
    axes.set_xlabel("seconds")
    axes.set_ylabel("replicas")
    axes.set_title(f"{title}: replicas over time")
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
