"""Replay a demand trace through a policy: the same policy code the service runs, against a model
of replicas instead of containers. Pure: the CLI reads and writes the files.

The model, one step a second:
* demand (CPU cores) is shared evenly by the ready replicas; a replica serves at most `capacity`
  cores, so utilisation is `min(demand / ready, capacity) / capacity` and saturates at 100 %;
* a new replica is starting (reported not ready) for `startup` seconds, then serves;
* every `interval` seconds each replica reports its mean utilisation over the seconds it served
  since its last report (none yet: no reading) and the share of them it spent at capacity (where
  CFS would have throttled it), the policy decides (told the wall time `start` + t, and the
  start-up measured as the service measures it: from a replica's create to its first counted
  report, the median of the last five), and the count changes at once; when a new
  replica starts serving, every replica's window starts afresh, as the service's do;
  scale-down removes starting replicas first, then the newest.

`needed` is the count that would run every replica at the target: ceil(demand / (capacity *
target)), within [min, max].
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Protocol

from policies.base import Policy, ReplicaSample, Signal
from policies.options import BehaviorOptions
from policies.pipeline import Outcome, Pipeline, Round, Zero
from policies.schedule import Bounds, Schedule
from policies.zero import ZeroRule


@dataclass(frozen=True, slots=True)
class Model:
    capacity: float = 1.0
    """Cores one replica can use (its CPU limit)."""
    startup: float = 10.0
    """Seconds from create to serving."""
    interval: float = 5.0
    target: float = 50.0
    """Percent: the policy's CPU target, to compute the needed count."""
    minimum: int = 1
    maximum: int = 20
    initial: int | None = None
    """Replicas at t=0; the needed count for the first demand when None."""
    schedule: Schedule = field(default_factory=Schedule)
    """Windows that change min and max, their time zone and lead (policies/schedule.py), on the
    clock `start` sets."""
    start: datetime = datetime(2026, 1, 5)
    """When the trace's t=0 is, in the schedule's time zone (by default a Monday, 00:00)."""
    zero: ZeroRule | None = None
    """With `minimum` 0: when the service sleeps and wakes (policies/zero.py). The demand is then
    also the service's metric, as a proxy's requests in flight or a queue's depth would say it:
    only a metric can wake a service that runs nothing."""

    def bounds(self, t: float) -> Bounds:
        """Min and max at `t` seconds into the trace, as the schedule sets them."""
        return self.schedule.bounds(self.minimum, self.maximum, self.wall(t))

    def wall(self, t: float) -> float:
        """`t` seconds into the trace as Unix time."""
        zone = self.schedule.timezone
        return (self.start.replace(tzinfo=zone) + timedelta(seconds=t)).timestamp()

    def needed(self, demand: float, t: float = 0.0) -> int:
        raw = math.ceil(demand / (self.capacity * self.target / 100) - 1e-9)
        found = self.bounds(t)
        return min(max(raw, found.minimum), found.maximum)


@dataclass(frozen=True, slots=True)
class Row:
    t: float
    demand: float
    needed: int
    replicas: int
    ready: int
    schedule: str | None = None
    """The windows in force and the bounds they set, when any is."""


@dataclass(frozen=True, slots=True)
class Summary:
    under_provisioned_s: float
    """Seconds in which demand exceeded what the ready replicas serve at the target."""
    saturated_s: float
    """Seconds in which demand exceeded the ready replicas at full capacity: work was lost."""
    over_provisioned_replica_s: float
    """Sum over seconds of replicas beyond the needed count."""
    actions: int
    replica_s: float
    """Sum over seconds of the replicas there were, starting ones included: what it cost."""
    needed_replica_s: float
    """Sum over seconds of the needed count: what a policy never under-provisioned and never
    over, with no start-up, would cost."""
    reaction_s: float | None
    """Longest time, over the steps up (the needed count rising by 2 or more at once), until that
    many replicas were ready; None without such a step."""


@dataclass(slots=True)
class Result:
    timeline: list[Row] = field(default_factory=list)
    decisions: list[tuple[float, int, int, str]] = field(default_factory=list)
    """(time, from, to, reason) of each action."""
    summary: Summary | None = None


@dataclass(slots=True)
class _Replica:
    name: str
    created: float
    busy: float = 0.0
    """Utilisation-seconds served since the last report."""
    served: float = 0.0
    """Seconds served since the last report."""
    held: float = 0.0
    """Seconds of those spent at capacity, where CFS would throttle it."""


def read_trace(text: str) -> list[tuple[float, float]]:
    """CSV `time,demand` (seconds, CPU cores), a header line allowed, sorted by time."""
    rows: list[tuple[float, float]] = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or fields[0].strip().startswith("#"):
            continue
        try:
            rows.append((float(fields[0]), float(fields[1])))
        except (ValueError, IndexError):
            if number == 1:
                continue  # the header
            raise ValueError(f"trace line {number}: expected time,demand, got {fields!r}") from None
    if not rows:
        raise ValueError("trace has no rows")
    return sorted(rows)


def write_timeline(rows: Iterable[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "demand", "needed", "replicas", "ready", "schedule"])
    for r in rows:
        writer.writerow(
            [f"{r.t:g}", f"{r.demand:.3f}", r.needed, r.replicas, r.ready, r.schedule or ""]
        )
    return out.getvalue()


class Decider(Protocol):
    """What decides each round: the pipeline (pipeline.py), or anything that makes the same
    decisions from the same rounds (the parity test drives a service's controller)."""

    def zero(self, now: Round, *, running: bool) -> Zero | None: ...

    def decide(self, now: Round) -> Outcome: ...

    def record(self, now: float, before: int, after: int, *, saturated: bool = False) -> None: ...


def simulate(
    trace: Sequence[tuple[float, float]],
    policy: Policy,
    model: Model,
    behavior: BehaviorOptions | None = None,
    *,
    decider: Decider | None = None,
) -> Result:
    """Replay `trace` through `policy` under the behaviour rules (the HPA's defaults if None):
    through the one decision pipeline the service's controller runs (pipeline.py), or through
    `decider`."""
    pipeline = decider or Pipeline(policy, behavior or BehaviorOptions())
    result = Result()
    end = trace[-1][0]
    initial = model.initial if model.initial is not None else model.needed(trace[0][1])
    replicas = [_Replica(f"r{i}", -model.startup) for i in range(initial)]
    serial = initial
    cursor = 0
    startups: list[float] = []  # measured, newest last
    counted = {r.name for r in replicas}  # those whose start-up is measured, or was before t=0
    rises: list[tuple[float, int]] = []  # (time, needed) where the needed count went up
    reached: dict[int, float] = {}  # index in rises -> when ready replicas caught up
    previous_needed = model.needed(trace[0][1])

    t = 0.0
    while t <= end:
        # Report first: a report at t covers the seconds [t - interval, t).
        if t > 0 and t % model.interval == 0:
            samples = tuple(_report(r, t, model) for r in replicas)
            startups += _started(replicas, samples, counted, t)
            startup = median(startups[-5:]) if startups else None
            # With a zero rule the demand is the metric, as last measured (the second before).
            signal = Signal("demand", trace[cursor][1]) if model.zero is not None else None
            now = Round(model.minimum, model.maximum, samples, now=t, wall=model.wall(t),
                        signal=signal, startup=startup, schedule=model.schedule,
                        zero=model.zero)  # fmt: skip
            zero = pipeline.zero(now, running=bool(replicas)) if model.zero is not None else None
            if zero is not None and zero.act is not None:
                # Asleep: every replica goes; woken: the service's own container starts again.
                before, after = len(replicas), 0 if zero.act == "sleep" else 1
                serial = _scale(replicas, after, t, serial)
                pipeline.record(t, before, after)
                result.decisions.append((t, before, after, f"{zero.act}: {zero.reason}"))
            elif zero is None:  # (a service at zero that stays there decides nothing more)
                decision = pipeline.decide(now).decision
                serial = _scale(replicas, decision.desired, t, serial)
                pipeline.record(t, decision.current, decision.desired, saturated=decision.saturated)
                if decision.desired != decision.current:
                    reason = decision.reason
                    result.decisions.append((t, decision.current, decision.desired, reason))

        while cursor + 1 < len(trace) and trace[cursor + 1][0] <= t:
            cursor += 1
        demand = trace[cursor][1]
        needed = model.needed(demand, t)
        ready = [r for r in replicas if t - r.created >= model.startup]
        if any(t - r.created == model.startup for r in ready):
            # A replica starts serving: every window starts afresh, as the service's do when
            # a scale action ends, so no report mixes the old count's load into the new one's.
            for r in replicas:
                r.busy = r.served = r.held = 0.0
        share = demand / len(ready) if ready else 0.0
        utilisation = min(share, model.capacity) / model.capacity * 100
        for r in ready:
            r.busy += utilisation
            r.served += 1
            r.held += share > model.capacity
        if needed >= previous_needed + 2:
            rises.append((t, needed))
        previous_needed = needed
        reached.update(
            (i, t) for i, (_, want) in enumerate(rises) if i not in reached and len(ready) >= want
        )
        in_force = model.bounds(t).reason if model.schedule.windows else None
        result.timeline.append(Row(t, demand, needed, len(replicas), len(ready), in_force))
        t += 1.0

    reactions = [reached.get(i, end) - start for i, (start, _) in enumerate(rises)]
    result.summary = summarize(
        result.timeline, result.decisions, model, max(reactions) if reactions else None
    )
    return result


def summarize(
    rows: Sequence[Row],
    decisions: Sequence[tuple[float, int, int, str]],
    model: Model,
    reaction_s: float | None = None,
) -> Summary:
    """The summary of a timeline's seconds and its actions (of all of a run, or of a part of
    it: the benchmark counts a run of days from its second day too)."""
    return Summary(
        under_provisioned_s=float(
            sum(r.demand > r.ready * model.capacity * model.target / 100 + 1e-9 for r in rows)
        ),
        saturated_s=float(sum(r.demand > r.ready * model.capacity + 1e-9 for r in rows)),
        over_provisioned_replica_s=float(sum(max(r.replicas - r.needed, 0) for r in rows)),
        actions=len(decisions),
        replica_s=float(sum(r.replicas for r in rows)),
        needed_replica_s=float(sum(r.needed for r in rows)),
        reaction_s=reaction_s,
    )


def _started(
    replicas: list[_Replica], samples: Sequence[ReplicaSample], counted: set[str], now: float
) -> list[float]:
    """The start-ups of the replicas counted for the first time now, as the service measures
    them: from the create to the first report that counts."""
    out = []
    for replica, sample in zip(replicas, samples, strict=True):
        if replica.name not in counted and sample.ready and sample.cpu is not None:
            counted.add(replica.name)
            out.append(now - replica.created)
    return out


def _scale(replicas: list[_Replica], desired: int, now: float, serial: int) -> int:
    """Add or remove replicas in place; returns the last serial number used."""
    while len(replicas) < desired:
        serial += 1
        replicas.append(_Replica(f"r{serial}", now))
    # Starting ones and then the newest go first, as the actuator removes them.
    replicas.sort(key=lambda r: r.created)
    del replicas[desired:]
    return serial


def _report(replica: _Replica, now: float, model: Model) -> ReplicaSample:
    starting = now - replica.created < model.startup
    cpu = replica.busy / replica.served if replica.served else None
    throttled = replica.held / replica.served if replica.served else None
    replica.busy = replica.served = replica.held = 0.0
    return ReplicaSample(
        container_id=replica.name,
        cpu=None if starting else cpu,
        ready=not starting,
        note="starting" if starting else "",
        started_at=replica.created,
        throttled=None if starting else throttled,
    )
