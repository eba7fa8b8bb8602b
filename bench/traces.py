"""Demand traces (seconds, CPU cores) for the policy benchmark, in families, generated with fixed
seeds; each family has a few members so that no single shape is tuned for.

With the model's defaults (1 core per replica, 50 % target) a replica serves 0.5 core at the
target, so a demand of D cores needs ceil(2 D) replicas. Steps land on an interval boundary:
a step in the middle of an interval is seen partly in one report and fully in the next.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

Trace = list[tuple[float, float]]


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    trace: Trace
    covered: bool = False
    """Start at the count that covers the trace's peak as the policies see it (means over an
    interval), not at what its first second needs: for a level load, the question is whether
    noise alone moves the service."""


def step() -> Trace:
    """Needs 2, then 4 at t=120 (a jump every policy can see: 90 % per replica), then 2 again."""
    return [(0, 1.0), (120, 1.8), (600, 1.0), (1200, 1.0)]


def big_step() -> Trace:
    """Needs 2, then 10 at t=120: each of the 2 is held at its limit (250 % of its share)."""
    return [(0, 1.0), (120, 5.0), (600, 1.0), (1200, 1.0)]


def ramp() -> Trace:
    """From 2 replicas' worth up to 9 over 10 minutes, and back down over the next 10."""
    rows: Trace = []
    for t in range(0, 1201, 10):
        rows.append((t, 0.9 + 3.5 * (t / 600 if t <= 600 else (1200 - t) / 600)))
    rows.append((1800, 0.9))
    return rows


def diurnal(low: float = 0.75, high: float = 3.25, period: float = 3600) -> Trace:
    """A day compressed into an hour: a sine between 1.5 and 6.5 replicas' worth."""
    mid, half = (high + low) / 2, (high - low) / 2
    return [(t, mid + half * math.sin(2 * math.pi * t / period)) for t in range(0, 3601, 10)]


def spikes(every: int = 300, width: int = 20, height: float = 3.0) -> Trace:
    """A base needing 2 with a burst needing 2 x `height` every `every` seconds."""
    rows: Trace = []
    for t in range(0, 1801, 5):
        rows.append((t, height if t % every in range(150, 150 + width) else 1.0))
    return rows


def sawtooth(low: float = 0.9, high: float = 3.4, period: int = 600) -> Trace:
    """A slow rise from 2 to 7 replicas' worth, then a sudden drop, every ten minutes."""
    return [(t, low + (high - low) * (t % period) / period) for t in range(0, 3601, 10)]


def noisy_level(level: float = 2.0, noise: float = 0.2, seed: int = 7) -> Trace:
    """Level at `level` cores (4 replicas' worth at the target by default) with ±`noise`
    uniform noise every second."""
    rng = random.Random(seed)
    return [(t, level * (1 + rng.uniform(-noise, noise))) for t in range(0, 3601)]


def ramp_stops(low: float = 0.9, high: float = 4.4, start: int = 120, rise: int = 300) -> Trace:
    """Level at 2 replicas' worth, a rise to 9 over five minutes, then level again: the trend
    must not carry on past the top."""
    rows: Trace = [(0, low)]
    rows += [(start + t, low + (high - low) * t / rise) for t in range(0, rise + 1, 10)]
    rows.append((1500, high))
    return rows


def flash_crowd(base: float = 1.0, crowd: float = 4.5, at: int = 300, lasts: int = 120) -> Trace:
    """A base needing 2, and once, without warning, 9 for two minutes."""
    return [(0, base), (at, crowd), (at + lasts, base), (1200, base)]


def noise(replicas: float = 3.0, spread: float = 0.15, *, gaussian: bool = False,
          seed: int = 21) -> Trace:  # fmt: skip
    """An hour level at `replicas`' worth, a new reading every 5 s (one a report at the bench's
    first interval, so no report averages it away): uniform within ±`spread`, or with
    `gaussian` normal with `spread` as its standard deviation (cut at 3 of them)."""
    rng = random.Random(seed)
    level = replicas / 2

    def jitter() -> float:
        if gaussian:
            return max(-3 * spread, min(3 * spread, rng.gauss(0.0, spread)))
        return rng.uniform(-spread, spread)

    return [(t, level * (1 + jitter())) for t in range(0, 3601, 5)]


def crowd(extra: float, lasts: int, base: float = 1.8, at: int = 900) -> Trace:
    """An hour at `base` replicas' worth (±5 % noise every 5 s: 2 replicas cover it) with,
    once, `extra` more for `lasts` seconds: the crowd comes in one reading and leaves in one."""
    rng = random.Random(int(extra * 1000 + lasts))
    return [
        (t, (base + (extra if at <= t < at + lasts else 0.0)) / 2 * (1 + rng.uniform(-0.05, 0.05)))
        for t in range(0, 3601, 5)
    ]


def drift(low: float = 3.0, high: float = 6.0, seed: int = 31) -> Trace:
    """An hour drifting from `low` to `high` replicas' worth (±5 % noise every 5 s): a rise too
    slow for a minute's window to tell from noise."""
    rng = random.Random(seed)
    return [
        (t, (low + (high - low) * t / 3600) / 2 * (1 + rng.uniform(-0.05, 0.05)))
        for t in range(0, 3601, 5)
    ]


def noisy_cycle(spread: float = 0.1, seed: int = 41) -> Trace:
    """The fast day-curve (a 20-minute cycle, 1 to 9 replicas' worth, three times) with
    ±`spread` uniform noise every 5 s."""
    rng = random.Random(seed)
    return [(t, d * (1 + rng.uniform(-spread, spread))) for t, d in _every(diurnal(0.5, 4.5, 1200))]


def _every(trace: Trace, step: int = 5) -> Trace:
    """`trace` read every `step` seconds (the value in force at each)."""
    out: Trace = []
    cursor = 0
    for t in range(0, int(trace[-1][0]) + 1, step):
        while cursor + 1 < len(trace) and trace[cursor + 1][0] <= t:
            cursor += 1
        out.append((t, trace[cursor][1]))
    return out


def _day(hour: float, low: float, high: float) -> float:
    """A working day's curve: `low` at night, rising from 6:00 to `high` at 14:00, back by 22:00."""
    if not 6 <= hour < 22:
        return low
    return low + (high - low) * math.sin(math.pi * (hour - 6) / 16)


def days(count: int = 3, low: float = 0.75, high: float = 3.25, noise: float = 0.1,
         seed: int = 11, weekend: float | None = None, shift: float = 0.0) -> Trace:  # fmt: skip
    """`count` real days (a reading a minute), each the working day's curve with ±`noise`
    uniform noise; with `weekend`, days 6 and 7 of each week run at that share of it; with
    `shift`, every day after the first runs that many hours later (a day that does not
    repeat the one before)."""
    rng = random.Random(seed)
    rows: Trace = []
    for minute in range(count * 24 * 60 + 1):
        later = shift if minute >= 24 * 60 else 0.0
        hour = (minute / 60 - later) % 24
        level = _day(hour, low, high)
        if weekend is not None and (minute // (24 * 60)) % 7 in (5, 6):
            level = low + (level - low) * weekend
        rows.append((minute * 60.0, level * (1 + rng.uniform(-noise, noise))))
    return rows


def _cases() -> list[Case]:
    made: list[tuple[str, str, Callable[[], Trace], bool]] = [
        ("step", "step 2->4", step, False),
        ("step", "step 2->10", big_step, False),
        ("ramp", "ramp", ramp, False),
        ("spikes", "spikes x3", spikes, False),
        ("spikes", "spikes x2 wide", lambda: spikes(every=240, width=60, height=2.0), False),
        ("diurnal", "diurnal", diurnal, False),
        ("diurnal", "diurnal fast", lambda: diurnal(0.5, 4.5, period=1200), False),
        ("sawtooth", "sawtooth", sawtooth, False),
        ("sawtooth", "sawtooth steep", lambda: sawtooth(0.9, 4.9, period=300), False),
        ("noisy-level", "noisy 4", noisy_level, True),
        ("noisy-level", "noisy 7", lambda: noisy_level(3.3, 0.2, seed=8), True),
        ("noisy-level", "noisy 8 ±10%", lambda: noisy_level(4.0, 0.1, seed=9), True),
        ("ramp", "ramp 2->9 stops", ramp_stops, False),
        ("ramp", "ramp 2->9 fast", lambda: ramp_stops(rise=120), False),
        ("spikes", "flash crowd", flash_crowd, False),
        ("noise", "noise 3 ±5%", lambda: noise(3, 0.05, seed=21), False),
        ("noise", "noise 3 ±10%", lambda: noise(3, 0.10, seed=22), False),
        ("noise", "noise 3 ±15%", lambda: noise(3, 0.15, seed=23), False),
        ("noise", "noise 3 ±20%", lambda: noise(3, 0.20, seed=24), False),
        ("noise", "noise 8 ±5%", lambda: noise(8, 0.05, seed=25), False),
        ("noise", "noise 8 ±10%", lambda: noise(8, 0.10, seed=26), False),
        ("noise", "noise 8 ±15%", lambda: noise(8, 0.15, seed=27), False),
        ("noise", "noise 8 ±20%", lambda: noise(8, 0.20, seed=28), False),
        ("noise", "noise 3 gauss 10%", lambda: noise(3, 0.10, gaussian=True, seed=29), False),
        ("noise", "noise 8 gauss 10%", lambda: noise(8, 0.10, gaussian=True, seed=30), False),
        ("flash", "flash +2 for 2 min", lambda: crowd(2, 120), False),
        ("flash", "flash +2 for 5 min", lambda: crowd(2, 300), False),
        ("flash", "flash +5 for 2 min", lambda: crowd(5, 120), False),
        ("flash", "flash +5 for 5 min", lambda: crowd(5, 300), False),
        ("drift", "drift 3->6 in 1 h", drift, False),
        ("diurnal", "cycle 20 min ±10%", noisy_cycle, False),
        ("days", "3 days ±10%", days, False),
        ("days", "8 days, weekends", lambda: days(8, weekend=0.3, seed=12), False),
        ("unrepeated", "2 days, the 2nd 6 h later", lambda: days(2, shift=6, seed=13), False),
    ]
    return [Case(family, name, make(), covered) for family, name, make, covered in made]


CASES = _cases()
FAMILIES = ("noisy-level", "step", "spikes", "diurnal", "sawtooth", "ramp", "days", "noise",
            "flash", "drift", "unrepeated")  # fmt: skip
