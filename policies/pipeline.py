"""The one decision pipeline: what a round of a service decides, in this order, the same in the
service's controller (autoscaler/control/controller.py) and in the simulator (simulator.py), so
that `simulate` says what `run` does:

    the bounds    the labels' min and max, as the schedule's windows in force change them
                  (schedule.py), a window's min `lead` seconds early
    zero          where the min in force is 0: a metric quiet for to-zero-after puts the
                  service to sleep, and one that is wanted again wakes it (zero.py), as does
                  one missing past its fallback wait, for a fallback above 0 (fallback.py); a
                  sleeping service decides nothing more (`Pipeline.zero`, asked before `decide`)
    the floor     a running service runs at least one (only a sleep takes it to zero)
    the policy    its proposal (policies/<name>.py)
    idle          replicas that take no load beside saturated ones, once that has lasted
                  IDLE_ROUNDS rounds: the proposal is made over the others, the idle kept on
                  top (idle.py)
    fallback      the metric missing past its wait: the fallback count (fallback.py)
    behaviour     stabilization windows, rate limits, cooldowns and the bounds (behavior.py)
    own           never below the user's own replicas, which are never removed

Pure: a round's facts in, an `Outcome` out, on the clocks the caller gives. It keeps what a
decision carries over from round to round: the behaviour's windows, the idle rounds, when the
metric went missing, how long the metric has been quiet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from policies import fallback
from policies.base import Decision, Direction, Policy, PolicyInput, Proposal, ReplicaSample, Signal
from policies.behavior import Behavior
from policies.fallback import Fallback
from policies.idle import Idle, idle_beside_saturated, propose_without, still_idle
from policies.options import BehaviorOptions
from policies.records import record
from policies.schedule import Bounds, Schedule
from policies.zero import Quiet, ZeroRule

IDLE_ROUNDS = 3
"""Rounds in a row replicas must idle beside saturated ones to be a finding, not a moment."""


@record
class Round:
    """One round of a service, as the pipeline decides on it."""

    minimum: int
    """The labels' min: the schedule's windows may raise it, the floor is at least 1."""
    maximum: int
    """The labels' max: the schedule's windows may lower it."""
    samples: tuple[ReplicaSample, ...]
    now: float
    """A clock that only moves forward: what windows, rates and waits are measured on."""
    wall: float
    signal: Signal | None = None
    startup: float | None = None
    own: int = 0
    """The user's own counted replicas: never removed, so never decided below."""
    fallback: Fallback | None = None
    schedule: Schedule = field(default_factory=Schedule)
    zero: ZeroRule | None = None
    """How the service sleeps and wakes, where the labels' min is 0."""

    @property
    def bounds(self) -> Bounds:
        """The min and max in force (the schedule's windows change the labels')."""
        return self.schedule.bounds(self.minimum, self.maximum, self.wall)


@dataclass(frozen=True, slots=True)
class Zero:
    """What the zero stage says of a round: `sleep` (a running service's metric has been quiet
    long enough), `wake` (one at zero is wanted again), or None (one at zero stays there)."""

    act: Literal["sleep", "wake"] | None
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    inputs: PolicyInput
    idle: Idle | None = None
    """Replicas that take no load beside saturated ones, while that lasts (from its
    IDLE_ROUNDS-th round on)."""
    bounds: Bounds | None = None
    """The min and max in force, and the schedule's windows that set them."""
    missing_for: float | None = None
    """Seconds the metric has been missing (past its max age, or failing)."""
    falling_back: bool = False
    """The fallback count is what the service runs now."""


class Pipeline:
    def __init__(
        self, policy: Policy, behavior: BehaviorOptions, *, previous: Pipeline | None = None
    ) -> None:
        """A service's pipeline; `previous`, the one its former labels had: the behaviour's
        windows and records carry over, as a label change must not undo a cooldown."""
        self.policy = policy
        before = previous.behavior if previous is not None else None
        self.behavior: Behavior = Behavior(behavior, previous=before)
        self._rounds = 0  # rounds in a row with replicas idle beside saturated ones
        self._idle: tuple[str, ...] = ()  # the idle replicas found, while they last
        self._missing_since: float | None = None
        self._quiet: Quiet | None = previous._quiet if previous is not None else None
        self._standing: tuple[Outcome, Proposal, int] | None = None
        """The last outcome, a hold, with its proposal and the user's replicas then: what
        `again` may find standing."""

    def zero(self, now: Round, *, running: bool) -> Zero | None:
        """The zero stage, asked first each round of a service whose labels allow zero or that
        is at zero: whether it sleeps (`running`) or wakes (at zero). None: on to `decide`
        (running), or stay at zero."""
        found = now.bounds
        rule = now.zero if found.minimum == 0 else None
        value = now.signal.value if now.signal is not None else None
        name = now.signal.name if now.signal is not None else "its metric"
        if not running:
            self._quiet = None  # a quiet counts from the service's next start
            # Counted at zero too: a metric missing past its wait wakes the service, and the
            # rounds after the wake run the fallback count at once.
            missing_for = self._missing(now.signal, now.now)
            if rule is None:
                return Zero("wake", f"a schedule sets min {found.minimum}")
            if rule.active(value):
                return Zero("wake", f"{name} {rule.describe(value)}")
            if now.signal is not None and missing_for is not None:
                return _missing_at_zero(now.signal, missing_for, now.fallback)
            return Zero(None, f"{name} {rule.describe(value)}")
        if rule is None:
            self._quiet = None
            return None
        if self._quiet is None or self._quiet.rule != rule:
            self._quiet = Quiet(rule)
        self._quiet.observe(value, now.now)
        if not self._quiet.due(now.now):
            return None
        quiet = f"{self._quiet.lasted(now.now):.0f}s (to-zero-after {rule.after:g}s)"
        return Zero("sleep", f"{name} {rule.describe(value)} for {quiet}")

    def decide(self, now: Round) -> Outcome:
        found = now.bounds
        # A running service runs at least one: only a sleep takes it to zero.
        inputs = PolicyInput(len(now.samples), max(found.minimum, 1), found.maximum, now.samples,
                             now.now, now.signal, wall=now.wall, startup=now.startup)  # fmt: skip
        idle = self._idle_now(inputs.samples)
        if idle is None:
            proposal = self.policy.propose(inputs)
        else:
            why = "takes no load while others are saturated"
            proposal = propose_without(self.policy, inputs, idle, why)
        missing_for = self._missing(now.signal, now.now)
        proposal = fallback.apply(proposal, now.signal, missing_for, now.fallback)
        decision = self.behavior.decide(inputs, proposal)
        if decision.desired < now.own:
            # The user's containers are theirs: a service Compose runs 3 of never goes below 3.
            step = f"{now.own} of its containers are not clones: never removed"
            reason, steps = f"{decision.reason}; {step}", (*decision.steps, step)
            decision = replace(decision, desired=now.own, bound="own", reason=reason, steps=steps)
        due = fallback.due(now.signal, missing_for, now.fallback)
        outcome = Outcome(decision, inputs, idle, found, missing_for, due)
        steady = proposal.steady is not None and idle is None and now.signal is None
        held = steady and decision.direction is Direction.NONE and decision.bound != "own"
        self._standing = (outcome, proposal, now.own) if held else None
        return outcome

    def again(self, now: Round, cpu: float, held: float | None = None) -> Outcome | None:
        """The last outcome where it stands for this round, or None (then `decide`): `now`
        brings no samples; its replicas are the last round's own, each as it was then (ready,
        measured, none fresh: the caller knows), with a mean CPU of `cpu`, and, where every one
        is held back at its CPU limit, what they used (`held`, summed as saturation.py's `used`;
        None where none is). It stands where the policy's proposal would be the same
        (policies/base.py Steady), with the same bounds, no metric, and the behaviour's windows
        as they were (behavior.py `again`): a quiet service's round costs a few comparisons, and
        decides what `decide` would have."""
        if self._standing is None or now.signal is not None:
            return None
        outcome, proposal, own = self._standing
        steady = proposal.steady
        if steady is None or not steady.holds(cpu, held) or now.own != own:
            return None
        if proposal.count is None or now.bounds != outcome.bounds:
            return None
        if not self.behavior.again(now.now, proposal.count):
            return None
        return outcome

    def record(self, now: float, before: int, after: int, *, saturated: bool = False) -> None:
        """A scale action happened (from what the backend reports): for the rates and
        cooldowns (and no hold stands after it: behavior.py `again`)."""
        self.behavior.record(now, before, after, saturated=saturated)

    def _idle_now(self, samples: tuple[ReplicaSample, ...]) -> Idle | None:
        """The replicas idle beside saturated ones, once they have been for IDLE_ROUNDS rounds,
        and for as long as they still are."""
        if self._idle:
            idle = still_idle(samples, self._idle)
        else:
            idle = idle_beside_saturated(samples)
            self._rounds = self._rounds + 1 if idle else 0
        if idle is None or (not self._idle and self._rounds < IDLE_ROUNDS):
            if idle is None:
                self._idle, self._rounds = (), 0
            return None
        self._idle = idle.idle
        return idle

    def _missing(self, signal: Signal | None, now: float) -> float | None:
        missing = signal is not None and signal.value is None and signal.error is not None
        if not missing:
            self._missing_since = None
        elif self._missing_since is None:
            self._missing_since = now
        return None if self._missing_since is None else now - self._missing_since


def _missing_at_zero(signal: Signal, missing_for: float, rule: Fallback | None) -> Zero:
    """A service at zero whose metric is missing: woken once its fallback is due (KEDA applies
    the fallback at zero too), and until then, or without a fallback above 0, left at zero."""
    if rule is not None and fallback.wakes(signal, missing_for, rule):
        return Zero("wake", fallback.describe(signal, missing_for, rule))
    missing = fallback.missing(signal)
    if rule is None or rule.replicas == 0:
        return Zero(None, f"{missing}: not woken on missing data")
    return Zero(None, f"{missing}, missing {missing_for:.0f}s: woken to its fallback "
                      f"{rule.replicas} at {rule.after:g}s")  # fmt: skip
