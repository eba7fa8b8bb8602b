"""Schedules: windows of the week that change a service's `min` and `max`, whatever the load.

    autoscaler.schedule.work: "Mon-Fri 08:00-18:00 min=4"     the morning peak, met ahead
    autoscaler.schedule.night: "00:00-06:00 max=2"            a cap at night, every day
    autoscaler.schedule.timezone: Europe/Berlin                IANA name; UTC when unset
    autoscaler.schedule.lead: 2m                               a min in force this much early

A window is optional days (`Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`; every day without), a time of
day `HH:MM-HH:MM` in the schedule's time zone (an end before the start runs past midnight, into
the next day; `24:00` is the end of the day), and `min=N`, `max=N` or both. Where that is not
enough (the first Monday of a month, every 15 minutes), a cron expression and how long each
run lasts: `cron(0 2 * * mon#1) 3h min=8`, read by cronsim. Windows in force at
once resolve as the most demanding `min` and the least `max`, within the service's own `min`
and `max`; where a window's `max` is below the `min` in force, the `max` wins (a cap is a cap).

Pure: the windows, the labels' bounds and a time in, the bounds in force and why out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from cronsim import CronSim, CronSimError

from policies.options import seconds
from policies.records import record

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?:(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?P<settings>(?:\s+(?:min|max)\s*=\s*\d+)+)\s*$"
)
_CRON = re.compile(
    r"^\s*cron\((?P<expr>[^)]*)\)\s+(?P<length>\d+(?:\.\d+)?(?:s|m|h))"
    r"(?P<settings>(?:\s+(?:min|max)\s*=\s*\d+)+)\s*$"
)
_SETTING = re.compile(r"(min|max)\s*=\s*(\d+)")


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    days: frozenset[int]
    """Weekdays it starts on, 0 for Monday."""
    start: int
    """Minutes after midnight."""
    end: int
    """Minutes after midnight (1440 for 24:00); before `start`: the next day's."""
    minimum: int | None = None
    maximum: int | None = None
    cron: str | None = None
    """A cron expression for the window's starts, instead of days and a time of day."""
    length: float = 0.0
    """Seconds each of the cron expression's runs lasts."""

    def active(self, local: datetime) -> bool:
        """Whether the window is in force at `local`, a time in the schedule's time zone."""
        if self.cron is not None:
            # The latest start at or before `local`, of those recent enough to be in force.
            latest = None
            for begun in CronSim(self.cron, local - timedelta(seconds=self.length + 60)):
                if begun > local:
                    break
                latest = begun
            return latest is not None and local < latest + timedelta(seconds=self.length)
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= minute < self.end
        # Past midnight: begun today, or begun yesterday and not over yet.
        yesterday = (local - timedelta(days=1)).weekday()
        return (local.weekday() in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )

    def __str__(self) -> str:
        changes = [f"{k} {v}" for k, v in (("min", self.minimum), ("max", self.maximum))
                   if v is not None]  # fmt: skip
        return f"{self.name} ({', '.join(changes)})"


def parse_window(name: str, text: str) -> Window:
    """`Mon-Fri 08:00-18:00 min=4` or `cron(0 2 * * *) 3h min=8` -> a Window; ValueError saying
    what is wrong."""
    if (cron := _CRON.match(text)) is not None:
        return _cron_window(name, cron)
    found = _WINDOW.match(text)
    if found is None:
        raise ValueError(
            'expected "[days] HH:MM-HH:MM min=N max=N" (e.g. "Mon-Fri 08:00-18:00 min=4") or '
            '"cron(EXPR) LENGTH min=N max=N" (e.g. "cron(0 2 * * *) 3h min=8")'
        )
    days = _days(found["days"]) if found["days"] else frozenset(range(7))
    start, end = _minutes(found["start"]), _minutes(found["end"])
    if start == 24 * 60:
        raise ValueError("a window starts before 24:00")
    if start == end:
        raise ValueError("a window ends when it starts: it would never be in force")
    low, high = _settings(found["settings"])
    return Window(name, days, start, end, low, high)


def _cron_window(name: str, found: re.Match[str]) -> Window:
    expr = found["expr"].strip()
    try:
        CronSim(expr, datetime(2026, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"cron({expr}): {exc}") from None
    length = seconds(found["length"])
    if length <= 0:
        raise ValueError("a cron window lasts longer than 0s")
    low, high = _settings(found["settings"])
    return Window(name, frozenset(range(7)), 0, 0, low, high, cron=expr, length=length)


def _settings(text: str) -> tuple[int | None, int | None]:
    settings: dict[str, int] = {}
    for key, value in _SETTING.findall(text):
        if key in settings:
            raise ValueError(f"{key} is given twice")
        settings[key] = int(value)
    low, high = settings.get("min"), settings.get("max")
    if low is not None and high is not None and low > high:
        raise ValueError(f"min {low} is greater than max {high}")
    if high is not None and high < 1:
        raise ValueError("max must be at least 1")
    return low, high


def _minutes(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",")):
        ends = [e.strip() for e in part.split("-")]
        for end in ends:
            if end not in DAYS:
                raise ValueError(f"{end!r} is not a day: Mon, Tue, Wed, Thu, Fri, Sat or Sun")
        if len(ends) == 1:
            days.add(DAYS.index(ends[0]))
        else:
            first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
            # Fri-Mon wraps round the weekend.
            days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


@record
class Bounds:
    minimum: int
    maximum: int
    windows: tuple[Window, ...] = ()
    """The windows in force, in name order."""

    @property
    def reason(self) -> str | None:
        """What the schedule changed, in words; None when no window is in force."""
        if not self.windows:
            return None
        return f"schedule {', '.join(str(w) for w in self.windows)}: min {self.minimum}, " \
               f"max {self.maximum}"  # fmt: skip


def bounds(
    minimum: int, maximum: int, windows: Iterable[Window], local: datetime, lead: float = 0.0
) -> Bounds:
    """The service's `min` and `max` as the windows in force at `local` change them. A window's
    `min` is in force `lead` seconds early (the time new replicas take to serve), so that the
    replicas are ready when it begins; a `max` is in force at its own times."""
    early = local + timedelta(seconds=lead)
    raising = [w for w in windows if w.minimum is not None and (w.active(local) or w.active(early))]
    capping = [w for w in windows if w.maximum is not None and w.active(local)]
    low = max([minimum, *(w.minimum for w in raising if w.minimum is not None)])
    high = min([maximum, *(w.maximum for w in capping if w.maximum is not None)])
    active: Sequence[Window] = sorted(set(raising) | set(capping), key=lambda w: w.name)
    return Bounds(min(low, high), high, tuple(active))


@dataclass(frozen=True, slots=True)
class Schedule:
    """A service's windows, where their times of day are (`schedule.timezone`) and how early a
    window's min comes (`schedule.lead`): what the decision pipeline (pipeline.py) reads the
    bounds in force from, in the controller and in the simulator alike."""

    windows: tuple[Window, ...] = ()
    timezone: tzinfo = UTC
    lead: float = 0.0
    """Seconds early a window's min is in force."""

    def bounds(self, minimum: int, maximum: int, wall: float) -> Bounds:
        """The labels' `minimum` and `maximum` as the windows in force at `wall` (Unix time)
        change them."""
        if not self.windows:
            return Bounds(minimum, maximum)
        local = datetime.fromtimestamp(wall, self.timezone)
        return bounds(minimum, maximum, self.windows, local, self.lead)
