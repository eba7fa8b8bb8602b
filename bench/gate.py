"""The regression gate: every headline figure is read beside the baseline measured in the same
run (the HPA's rules with the same labels), as a ratio, and compared with the same ratio in the
table stored in bench/results/. A figure whose ratio is more than 20 % worse fails, with the
figure, the stored one and the change. (The queue step is not a headline here: its baseline,
CPU alone, is our own policy too, so a gain of ours there would read as a loss.)

A ratio, not the figure alone: a slower machine slows both sides; a change of ours moves only
one. `make bench` checks each table before it stores it; `make bench-check` runs the reaction
step alone, the default policy three times a case (the median: one slow start of a container
is not a regression) and the baseline once, and stores nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

TOLERANCE = 0.20
"""How much worse a ratio may get before the gate fails."""

_POLICY_WIDTH = 28  # the policy column of the reaction tables (bench/reaction.py `table`)


@dataclass(frozen=True, slots=True)
class Headline:
    """A figure (seconds, lower is better) beside its baseline from the same run."""

    name: str
    figure: float
    baseline: float

    @property
    def ratio(self) -> float:
        if self.baseline <= 0:
            return math.inf
        return self.figure / self.baseline

    def __str__(self) -> str:
        return f"{_seconds(self.figure)} against {_seconds(self.baseline)} ({self.ratio:.2f}x)"


def rows(text: str) -> dict[tuple[int, str, float], float]:
    """The reaction tables' rows: (table, policy, interval) -> seconds to the needed count
    (infinite where it was never reached). Tables count from 0, in the order printed."""
    found: dict[tuple[int, str, float], float] = {}
    table = -1
    for line in text.splitlines():
        if line.startswith("policy "):
            table += 1
            continue
        if table < 0 or not line.strip() or line.startswith("-"):
            continue
        policy, rest = line[:_POLICY_WIDTH].strip(), line[_POLICY_WIDTH:].split()
        number = r"\d+(\.\d+)?"
        if len(rest) < 2 or not re.fullmatch(number, rest[0]):
            continue
        if rest[1] != "never" and not re.fullmatch(number, rest[1]):
            continue
        seconds = math.inf if rest[1] == "never" else float(rest[1])
        found[(table, policy, float(rest[0]))] = seconds
    return found


# Each bench's headlines: (name, table, figure's policy, baseline's policy, interval).
HEADLINES: Mapping[str, tuple[tuple[str, int, str, str, float], ...]] = {
    "reaction": (
        ("reaction step, 2 s interval", 0, "target-tracking", "hpa", 2.0),
        ("reaction step, 1 s interval", 0, "target-tracking", "hpa", 1.0),
    ),
    "swarm": (("swarm step, 2 s interval", 0, "target-tracking (swarm)", "hpa (swarm)", 2.0),),
}


def headlines(bench: str, text: str) -> dict[str, Headline]:
    """The headlines of `bench`'s table `text` (none for a bench without any yet)."""
    found = rows(text)
    out = {}
    for name, table, ours, theirs, interval in HEADLINES.get(bench, ()):
        figure, baseline = found.get((table, ours, interval)), found.get((table, theirs, interval))
        if figure is not None and baseline is not None:
            out[name] = Headline(name, figure, baseline)
    return out


def regressions(stored: Mapping[str, Headline], fresh: Mapping[str, Headline]) -> list[str]:
    """Each headline of `fresh` whose ratio is more than TOLERANCE worse than `stored`'s, in
    words; a headline missing from `fresh` is one too."""
    out = []
    for name, before in stored.items():
        now = fresh.get(name)
        if now is None:
            out.append(f"{name}: not measured (stored: {before})")
            continue
        if now.ratio > before.ratio * (1 + TOLERANCE):
            change = now.ratio / before.ratio - 1 if before.ratio > 0 else math.inf
            out.append(f"{name}: {now}, stored {before}: {change:+.0%}")
    return out


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.1f} s"
