"""Demand traces (seconds, CPU cores) for the policy benchmark, generated with a fixed seed.

With the model's defaults (1 core per replica, 50 % target) a replica serves 0.5 core at the
target, so a demand of D cores needs ceil(2 D) replicas. Steps land on an interval boundary:
a step in the middle of an interval is seen partly in one report and fully in the next.
"""

from __future__ import annotations

import math
import random

Trace = list[tuple[float, float]]


def step() -> Trace:
    """Needs 2, then 4 at t=120 (a jump every policy can see: 90 % per replica), then 2 again."""
    return [(0, 1.0), (120, 1.8), (600, 1.0), (1200, 1.0)]


def ramp() -> Trace:
    """From 2 replicas' worth up to 9 over 10 minutes, and back down over the next 10."""
    rows: Trace = []
    for t in range(0, 1201, 10):
        rows.append((t, 0.9 + 3.5 * (t / 600 if t <= 600 else (1200 - t) / 600)))
    rows.append((1800, 0.9))
    return rows


def diurnal() -> Trace:
    """A day compressed into an hour: a sine between 1.5 and 6.5 replicas' worth."""
    return [(t, 2.0 + 1.25 * math.sin(2 * math.pi * t / 3600)) for t in range(0, 3601, 10)]


def spikes() -> Trace:
    """A base needing 2 with a 20-second burst needing 6 every 5 minutes."""
    rows: Trace = []
    for t in range(0, 1801, 5):
        rows.append((t, 3.0 if t % 300 in range(150, 170) else 1.0))
    return rows


def noisy_flat(seed: int = 7) -> Trace:
    """Level at the target of 4 replicas (2 cores) with ±20 % uniform noise every second."""
    rng = random.Random(seed)
    return [(t, 2.0 * (1 + rng.uniform(-0.2, 0.2))) for t in range(0, 3601)]


ALL = {
    "step": step,
    "ramp": ramp,
    "diurnal": diurnal,
    "spikes": spikes,
    "noisy-flat": noisy_flat,
}
