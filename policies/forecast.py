"""The arithmetic of leading the load (policies/predictive.py): a trend, the headroom its own
misses teach, and the demand seen at this time on earlier days. Pure: values and times in,
numbers out; each class keeps only what its rule needs, bounded.

Demand is in replicas' worth at the target (the HPA's raw ratio times the count, before ceil):
2.6 means 2.6 replicas would run exactly at the target.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from itertools import pairwise
from statistics import median

DAY = 86400.0
SIGNAL = 2.0
"""How many times the readings' scatter about the line its rise over the window must exceed to
be a rise and not noise."""
SIGNIFICANCE = 5.0
"""How many standard errors the slope must stand above zero to be a rise (a t-test on a line's
slope; `_standard_error`). Noise alone tilts a minute's line past 3 or 4 of them several times
an hour, and each false rise is a scale-up that the scale-down window holds for five minutes; at
5, none of the policy bench's twenty hours of flat noise (±5 to ±20 %, uniform and gaussian,
around 3 and 8 replicas' worth, at a 5 s and a 2 s interval) scaled anything up."""
LONGER = 2
"""Windows of readings a gentle trend's significance may be judged over."""
LEAST = 0.1
"""Replicas' worth: a line that rises less over its whole window is level, however little the
readings scatter (a load that moves in rare small steps has almost none)."""
UNCAPPED = 0.5
"""The share of a window's readings that must be uncapped (no replica at its limit) for its
line to lead: a capped reading says only "at least", and stays out of the line."""
HALVES = 0.25
"""The share of the window's slope each of its halves must rise at on its own: a flat half
beside a step tilts by noise alone, either way."""
SHORT = 6
"""The fewest readings the newest half-window's line may lead on."""
REPEATS_SPAN = 21600.0
"""Seconds of today that must have followed yesterday's curve for yesterday's floor to hold:
six hours, so that a day whose curve runs some hours later (or sooner) than yesterday's is
told apart before yesterday's rise is due (at two, the night before either looked the same,
and the floor took yesterday's morning peak hours early: 1.09x hpa's replica-seconds on the
policy bench's shifted day; 1.00x at six)."""
REPEATS = 0.2
"""How far today's buckets may be from yesterday's (at today's pace), as a share of today's
demand over the span, for the day to repeat."""


@dataclass(frozen=True, slots=True)
class Line:
    """A robust straight line through recent demand: where it is now and how fast it moves."""

    level: float
    """Demand now: where the newest quarter of the readings points, carried to now along the
    slope (their median: less noisy than the last reading, and not the window's line, which at
    a bend in the load runs a quarter of a window or more behind or ahead of it)."""
    slope: float
    """Replicas' worth a second."""
    rising: bool
    """Both halves of the window rise on their own: a ramp, not one jump. A single step up in
    the middle of the window tilts the whole line (more than half the pairs straddle it), but
    leaves one half flat; leading a step would only overshoot what the step already asks for.
    And the newest readings have not fallen below the line: where a rise stops, the line
    through the window still rises for half a window, and leading it would provision for a
    load that is not coming."""
    significance: float = math.inf
    """The slope over its standard error: how far it stands out of the readings' noise."""


class Trend:
    """The Theil-Sen line over the last `window` readings: the median of the slopes between
    every pair, so that a few outliers (a burst, a missed reading) do not tilt it. The HPA's
    answer to a rising load is one reading behind it; a line through the last minute says where
    the load will be when a replica asked for now starts serving."""

    def __init__(self, window: int = 12) -> None:
        self._window = window
        # Twice the window: a trend too gentle to stand out of the noise in one window may
        # in two (the line itself goes through the newest window alone).
        self._points: deque[tuple[float, float, bool]] = deque(maxlen=LONGER * window)

    def add(self, t: float, demand: float, *, capped: bool = False) -> None:
        """A reading; `capped` when it only says "at least this much" (replicas at their
        limit): it stays out of the line, which goes through what the load was seen to be."""
        self._points.append((t, demand, capped))

    def line(self, now: float) -> Line | None:
        """The line through the window at `now`; None with fewer than three readings. It
        rises only once the window is full and at least half of it uncapped, and only if its
        slope stands SIGNIFICANCE standard errors above zero, in the window, in the two
        windows, or in the newest half-window (a steep rise need not wait for a whole window
        of it: the HPA would be a window behind)."""
        every = list(self._points)
        window = every[-self._window :]
        points = [(t, d) for t, d, capped in window if not capped]
        line = _fit(points, now)
        if line is None or not line.rising:
            return _short(window, now, line, every)
        if len(window) < self._window or len(points) < UNCAPPED * self._window:
            return _short(window, now, replace(line, rising=False), every)
        if line.significance >= SIGNIFICANCE:
            return line
        both = [(t, d) for t, d, capped in every if not capped]
        longer = _significance(both, _slope(both) or 0.0)
        if len(every) == LONGER * self._window and longer >= SIGNIFICANCE:
            return line
        return _short(window, now, replace(line, rising=False), every)


def _short(window: list[tuple[float, float, bool]], now: float, line: Line | None,
           every: list[tuple[float, float, bool]]) -> Line | None:  # fmt: skip
    """The newest half of a window's line where a rise starts clearly out of a steady load;
    else `line`. The half's slope is judged against the scatter of the readings before it
    about their own line, not its own few readings' (six readings of noise now and then scatter
    little about their line, and would tilt it past any bar of their own); and the half must
    have left the line of the readings before it by more than their scatter (noise dips and
    comes back, a rise goes on), and rise in more than one jump (a step is no trend)."""
    half = window[-max(SHORT, len(window) // 2) :]
    if len(half) < SHORT or any(capped for _, _, capped in half):
        return line
    newest = [(t, d) for t, d, _ in half]
    short = _fit(newest, now)
    before = [(t, d) for t, d, capped in every[: -len(half)] if not capped]
    if short is None or not short.rising or len(before) < 2 * SHORT:
        return line
    span = newest[-1][0] - newest[0][0]
    jump = max(b - a for (_, a), (_, b) in pairwise(newest))
    if jump > short.slope * span / 2:
        return line
    slope = _slope(before) or 0.0
    intercept = median(d - slope * t for t, d in before)
    residuals = [d - intercept - slope * t for t, d in before]
    scatter = math.sqrt(sum(r * r for r in residuals) / (len(residuals) - 2))
    if short.level - (intercept + slope * now) <= SIGNAL * scatter:
        return line
    error = _standard_error(residuals, [t for t, _ in newest], n=len(newest))
    significance = short.slope / error if error > 0 else math.inf
    if significance >= SIGNIFICANCE:
        return replace(short, significance=significance)
    return line


def _fit(points: list[tuple[float, float]], now: float) -> Line | None:
    if len(points) < 3:
        return None
    slope = _slope(points)
    if slope is None:
        return None
    intercept = median(d - slope * t for t, d in points)
    # The halves by time, not by count: readings left out (capped) must not move a step's
    # far side into the first half.
    middle = (points[0][0] + points[-1][0]) / 2
    first = _slope([p for p in points if p[0] <= middle])
    second = _slope([p for p in points if p[0] >= middle])
    # Noise alone can tilt both halves: the rise over the window must also stand out of the
    # readings' scatter about the line (their median distance from it).
    scatter = median(abs(d - intercept - slope * t) for t, d in points)
    rise = slope * (points[-1][0] - points[0][0])
    newest = points[-max(3, len(points) // 4) :]
    level = median(d + slope * (now - t) for t, d in newest)
    # The newest readings below the line by more than noise would put them: the rise bends.
    bending = intercept + slope * now - level > SIGNAL * scatter
    rising = (
        slope > 0 and first is not None and second is not None
        and min(first, second) > HALVES * slope
        and rise > max(SIGNAL * scatter, LEAST) and not bending
    )  # fmt: skip
    return Line(level, slope, rising, _significance(points, slope))


def _significance(points: list[tuple[float, float]], slope: float) -> float:
    """The slope over its standard error about the line of that slope (a t statistic)."""
    intercept = median(d - slope * t for t, d in points)
    error = _standard_error([d - intercept - slope * t for t, d in points], [t for t, _ in points])
    if error > 0:
        return slope / error
    return math.inf if slope > 0 else 0.0  # readings exactly on the line


def _standard_error(residuals: list[float], times: list[float], n: int | None = None) -> float:
    """The slope's standard error: the residuals' standard deviation over the root of the
    times' sum of squares about their mean, with as many readings as are independent (a
    reading that repeats the one before, as readings more frequent than the load's own changes
    do, adds none: lag-1 autocorrelation, n (1 - r) / (1 + r)). `n`: the readings the slope
    went through, where the residuals (the scatter) come from more of them."""
    count = len(residuals)
    n = count if n is None else n
    mean = sum(times) / len(times)
    spread = sum((t - mean) ** 2 for t in times)
    squares = sum(r * r for r in residuals)
    if count < 3 or n < 3 or spread <= 0:
        return math.inf
    lagged = sum(a * b for a, b in pairwise(residuals))
    correlation = max(0.0, lagged / squares) if squares > 0 else 0.0
    independent = n * (1 - correlation) / (1 + correlation)
    return math.sqrt(squares / (count - 2) / spread * n / max(independent, 1.0))


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Theil-Sen: the median of the slopes between every pair of points."""
    slopes = [
        (d2 - d1) / (t2 - t1)
        for i, (t1, d1) in enumerate(points)
        for t2, d2 in points[i + 1 :]
        if t2 > t1
    ]
    return median(slopes) if slopes else None


class Headroom:
    """What the forecasts missed by, learned: each forecast is kept until the time it was for,
    then compared with the demand seen then. The headroom is the `quantile` of the recent
    shortfalls (a forecast above the demand is no shortfall): on a load the trend follows well
    it is near 0, on a jumpy one it grows until the forecasts cover the jumps."""

    def __init__(self, size: int = 30, quantile: float = 0.9) -> None:
        self._pending: deque[tuple[float, float]] = deque(maxlen=256)  # (due, forecast)
        self._misses: deque[float] = deque(maxlen=size)
        self._quantile = quantile

    def expect(self, due: float, forecast: float) -> None:
        self._pending.append((due, forecast))

    def seen(self, t: float, demand: float) -> None:
        """The demand at `t`: every forecast due by then is scored against it."""
        while self._pending and self._pending[0][0] <= t:
            _, forecast = self._pending.popleft()
            self._misses.append(max(demand - forecast, 0.0))

    @property
    def value(self) -> float:
        """Replicas' worth to add to the forecast; 0 until a forecast has been scored."""
        if not self._misses:
            return 0.0
        ordered = sorted(self._misses)
        return ordered[min(len(ordered) - 1, math.floor(self._quantile * len(ordered)))]


class Daily:
    """The demand of each `bucket` seconds of the day, for the last `days` days, by wall time:
    what this time of day needed before. The floor is yesterday's, or last week's same day's if
    lower (a Monday after a quiet Sunday expects last Monday's load, not Sunday's, but never
    more than yesterday's), and only once a whole day has been seen, as AWS's predictive
    scaling waits for its history."""

    def __init__(self, bucket: float = 300.0, days: int = 7) -> None:
        self.bucket = bucket
        self._days = days
        self._sums: dict[int, tuple[float, int]] = {}  # bucket number -> (sum, count)
        self._first: float | None = None

    def add(self, wall: float, demand: float) -> None:
        if self._first is None:
            self._first = wall
        number = int(wall // self.bucket)
        if number not in self._sums:
            # A new bucket: the days beyond the span go (once a bucket, not once a reading).
            oldest = number - int(self._days * DAY // self.bucket) - 1
            for gone in [n for n in self._sums if n < oldest]:
                del self._sums[gone]
        total, count = self._sums.get(number, (0.0, 0))
        self._sums[number] = (total + demand, count + 1)

    def floor(self, wall: float) -> float | None:
        """What this time of day (the bucket `wall` falls in) needed yesterday, or the same
        day last week if that was less; None before a whole day of history, or when yesterday
        has no such bucket."""
        if self._first is None or wall - self._first < DAY:
            return None
        number = int(wall // self.bucket)
        per_day = int(DAY // self.bucket)
        found = []
        for day in (1, 7):
            # The most of that day's buckets from five minutes before to half an hour after: a
            # floor that moved once a bucket with the noise of a bucket's mean would move the
            # count with it, up and down; this one leads a rise and steps down once it is over.
            near = (self._mean(number - day * per_day + k) for k in range(-1, 7))
            means = [m for m in near if m is not None]
            if day <= self._days and means:
                found.append(max(means))
        return min(found) if found else None

    def pace(self, wall: float) -> float:
        """Today's last hour against the same hour yesterday (their buckets' means summed, the
        current bucket left out: it is not over); 1 where yesterday has no such hour. Below 1,
        a quieter day so far (a Saturday after a week of work)."""
        number = int(wall // self.bucket)
        per_day = int(DAY // self.bucket)
        today = yesterday = 0.0
        for k in range(1, 13):
            now, then = self._mean(number - k), self._mean(number - k - per_day)
            if now is not None and then is not None:
                today += now
                yesterday += then
        return today / yesterday if yesterday > 0 else 1.0

    def repeats(self, wall: float) -> bool:
        """Whether today has followed yesterday's curve: over the last REPEATS_SPAN of whole
        buckets, today's means differ from yesterday's, taken at today's pace, by at most
        REPEATS of them (a quieter day of the same shape repeats; a holiday's flat morning
        after a working day's rise does not, nor a day whose load moved to other hours). A
        floor from a day that does not repeat is a guess of the load's shape."""
        number = int(wall // self.bucket)
        per_day = int(DAY // self.bucket)
        span = int(REPEATS_SPAN // self.bucket)
        pairs = [
            (now, then)
            for k in range(1, span + 1)
            if (now := self._mean(number - k)) is not None
            and (then := self._mean(number - k - per_day)) is not None
        ]
        if len(pairs) < span // 2:
            return False
        today = sum(now for now, _ in pairs)
        yesterday = sum(then for _, then in pairs)
        if yesterday <= 0:
            return today <= 0
        pace = today / yesterday
        apart = sum(abs(now - pace * then) for now, then in pairs)
        return apart <= REPEATS * today

    def rises(self, wall: float) -> bool:
        """Whether yesterday's demand rose at this time of day: the most of its buckets from
        this one to half an hour after above the most of the two before."""
        number = int(wall // self.bucket) - int(DAY // self.bucket)
        before: list[float] = []
        ahead: list[float] = []
        for k in range(-2, 7):
            if (mean := self._mean(number + k)) is not None:
                (ahead if k >= 0 else before).append(mean)
        return bool(before and ahead) and max(ahead) > max(before)

    def _mean(self, number: int) -> float | None:
        """The mean demand of bucket `number`, None where nothing was seen in it."""
        found = self._sums.get(number)
        return found[0] / found[1] if found is not None else None

    def export(self) -> dict[str, object]:
        """What the floor knows, to be kept across a restart."""
        return {"bucket": self.bucket, "first": self._first,
                "sums": {str(n): list(v) for n, v in self._sums.items()}}  # fmt: skip

    def restore(self, saved: dict[str, object]) -> None:
        """Take back what `export` gave, if it was made with the same bucket; TypeError or
        ValueError, and nothing taken, where it is not what `export` gives."""
        sums = saved.get("sums")
        if saved.get("bucket") != self.bucket:
            return
        first = saved.get("first")
        if not isinstance(sums, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v)
            for v in sums.values()
        ):
            raise TypeError("a bucket that is not [sum, count]")
        try:
            restored = {int(n): (float(v[0]), int(v[1])) for n, v in sums.items()}
            since = float(first) if isinstance(first, int | float) else None
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"a bucket that is not [sum, count]: {exc}") from None
        if any(not math.isfinite(total) or count < 1 for total, count in restored.values()):
            raise ValueError("a bucket with a sum that is not finite or no count")
        if since is not None and not math.isfinite(since):
            raise ValueError("a first time that is not finite")
        self._first, self._sums = since, restored


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
