"""A metric source: a Prometheus text endpoint read directly, once a round, without a Prometheus
server: a proxy's own metrics (Caddy's admin `/metrics`, HAProxy's exporter) or the
application's.

    metric.url     the endpoint, e.g. http://proxy:2019/metrics
    metric.name    the sample name, e.g. caddy_http_requests_total
    metric.match   label matchers, e.g. handler="reverse_proxy",code!="500" (=, !=, =~, !~)
    metric.pending a gauge of the requests held (in flight), whose growth a second is added

The value is the sum over the matching samples: as they stand for a gauge (requests in flight),
or their increase per second since the previous round for what only grows (a counter, a
histogram's or summary's _count, _sum and _bucket): the rate of requests. A series that restarts
(its counter fell) counts from zero; one that first appears counts from its next round. A proxy
that counts a request when it completes (Caddy) counts what its replicas serve, not what arrives:
while they are held back, the rest waits in flight. Its in-flight gauge as `metric.pending`
adds that growth, so the value is the requests that arrive: served a second, plus the growth of
those held a second (negative while a backlog drains). The text is parsed by prometheus_client's
own parser.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from autoscaler.errors import Faults
from autoscaler.sources.base import Member, Needs
from autoscaler.sources.bounds import MAX_SCRAPE, TooLarge, body, finite_or_infinite, parsed

_TIMEOUT = 5.0  # seconds, and never more than half an interval
_CUMULATIVE = frozenset({"counter", "histogram", "summary"})


_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher of a scraped sample, as PromQL writes it: `code!="500"`."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def matchers(text: str) -> tuple[Matcher, ...]:
    """`a="x",b!~"y.*"` -> matchers; ValueError saying where it is not one."""
    out: list[Matcher] = []
    at, text = 0, text.strip()
    while at < len(text):
        found = _MATCHER.match(text, at)
        if found is None or found.end() == at:
            raise ValueError(f'expected label="value" (or !=, =~, !~) at {text[at : at + 20]!r}')
        label, op, value = found.groups()
        value = re.sub(r"\\(.)", r"\1", value)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{label}{op}{value!r}: not a regular expression: {exc}") from None
        out.append(Matcher(label, op, value))
        at = found.end()
    return tuple(out)


class Options(BaseModel):
    """A scrape source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: str = Field(alias="metric.url", pattern=r"^https?://\S+$")
    """The text endpoint itself."""
    sample: str = Field(alias="metric.name", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    """The sample to read, e.g. `caddy_http_requests_total`."""
    match: str | None = Field(default=None, alias="metric.match")
    """Label matchers, e.g. `handler="reverse_proxy",code!="500"`."""
    pending: str | None = Field(
        default=None, alias="metric.pending", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
    )
    """A gauge of the requests the source holds (in flight, queued), with the same matchers:
    its growth a second is added to the rate, so that a counter that counts requests as they
    complete (Caddy's) still measures those that arrive while the replicas are held."""

    @field_validator("match")
    @classmethod
    def _matchers(cls, match: str | None) -> str | None:
        if match is not None:
            try:
                matchers(match)
            except ValueError as exc:
                raise PydanticCustomError("match", "{problem}", {"problem": str(exc)}) from exc
        return match

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        return matchers(self.match) if self.match else ()

    @property
    def name(self) -> str:
        return f"scrape {self.sample}{{{self.match}}}" if self.match else f"scrape {self.sample}"


@dataclass(frozen=True, slots=True)
class Series:
    """One sample as read: its value, whether it only grows, when it was read."""

    value: float
    cumulative: bool


@dataclass(slots=True)
class Scraped:
    """An endpoint's latest text, parsed, and the one before (for rates)."""

    at: float
    series: dict[tuple[str, frozenset[tuple[str, str]]], Series] = field(default_factory=dict)
    previous: Scraped | None = None
    error: str | None = None


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], Series]:
    """Every sample of a Prometheus text exposition; ValueError where it is none."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], Series] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc
    for family in families:
        for sample in family.samples:
            grows = family.type in _CUMULATIVE and not sample.name.endswith(
                ("_created", "_gcount", "_gsum")
            ) and "quantile" not in sample.labels  # fmt: skip
            out[(sample.name, frozenset(sample.labels.items()))] = Series(
                finite_or_infinite(sample.value), grows
            )
    return out


def value_of(
    scraped: Scraped, name: str, wanted: tuple[Matcher, ...], pending: str | None = None
) -> tuple[float | None, str | None]:
    """The source's value from an endpoint's last two reads: (value, None), (None, why not), or
    (None, None) while a rate waits for its second read."""
    if scraped.error is not None:
        return None, scraped.error
    value, why = _sum(scraped, name, wanted)
    if value is None or pending is None:
        return value, why
    held, why = _sum(scraped, pending, wanted)
    before = scraped.previous
    if held is None or before is None or before.error is not None:
        return None, why
    earlier, why = _sum(before, pending, wanted)
    if earlier is None:
        return None, why
    total = value + (held - earlier) / max(scraped.at - before.at, 1e-3)
    return (total, None) if math.isfinite(total) else (None, f"{pending} sums to {total}")


def _sum(
    scraped: Scraped, name: str, wanted: tuple[Matcher, ...]
) -> tuple[float | None, str | None]:
    """The matching samples of `name` summed: gauges as they stand, counters a second."""
    found = {k: s for k, s in scraped.series.items() if k[0] == name and _all(wanted, k[1])}
    if not found:
        shown = ",".join(str(m) for m in wanted)
        return None, f"no sample {name}{{{shown}}} at the endpoint"
    total = 0.0
    before = scraped.previous
    for key, series in found.items():
        if not series.cumulative:
            total += series.value
            continue
        if before is None or before.error is not None:
            return None, None  # the first read of a rate: wait for the next
        earlier = before.series.get(key)
        if earlier is None:
            continue  # a series new since the last read counts from the next one
        increase = series.value - earlier.value
        if increase < 0:
            increase = series.value  # the counter restarted
        total += increase / max(scraped.at - before.at, 1e-3)
    if not math.isfinite(total):
        return None, f"{name} sums to {total}"
    return total, None


def _all(wanted: tuple[Matcher, ...], labels: frozenset[tuple[str, str]]) -> bool:
    as_dict = dict(labels)
    return all(m.matches(as_dict) for m in wanted)


class Scrapes:
    def __init__(
        self,
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
        faults: Faults | None = None,
        limit: int = MAX_SCRAPE,
    ) -> None:
        self._seconds = min(_TIMEOUT, interval / 2)
        self._limit = limit  # bytes of an endpoint's text read at most
        self._now = now
        self._faults = faults or Faults()
        self._endpoints: dict[str, Scraped] = {}

    @classmethod
    def made(cls, needs: Needs) -> Scrapes:
        return cls(
            interval=needs.interval, now=needs.now, faults=needs.faults, limit=needs.max_scrape
        )

    async def want(self, wanted: Sequence[Options]) -> None:
        await self.ask(o.url for o in wanted)

    def members(self, options: Options) -> list[Member]:
        scraped = self.scraped(options.url)
        if scraped is None:
            return []
        value, error = value_of(scraped, options.sample, options.matchers, options.pending)
        if value is None and error is None:
            return []  # a counter's first read: its rate comes with the next
        return [Member(options.sample, value, scraped.at, error)]

    async def run(self) -> None:
        """Nothing long-lived: the endpoints are read each round."""

    def scraped(self, url: str) -> Scraped | None:
        return self._endpoints.get(url)

    async def ask(self, urls: Iterable[str]) -> None:
        """Read every endpoint at once; forget those nobody names any more."""
        wanted = set(urls)
        for gone in set(self._endpoints) - wanted:
            del self._endpoints[gone]
        await asyncio.gather(*(self._read(url) for url in wanted))

    async def _read(self, url: str) -> None:
        asked = self._now()
        last = self._endpoints.get(url)
        # Only the previous read is kept: a rate needs the one before, nothing older.
        previous = None if last is None else Scraped(last.at, last.series, None, last.error)
        try:
            series = await parsed(await _fetch(url, self._seconds, self._limit), _parse_bytes)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{url} did not answer: {exc or type(exc).__name__}"
            self._endpoints[url] = Scraped(asked, {}, previous, error)
        except TooLarge as exc:
            self._endpoints[url] = Scraped(asked, {}, previous, f"{url}: {exc}")
        except ValueError as exc:
            self._endpoints[url] = Scraped(
                asked, {}, previous, f"{url}: not Prometheus text: {exc}"
            )
        except Exception as exc:
            self._faults.failed(f"scrape {url}", exc)
            error = f"{url}: unexpected {type(exc).__name__} reading it"
            self._endpoints[url] = Scraped(asked, {}, previous, error)
        else:
            self._endpoints[url] = Scraped(asked, series, previous)


async def _fetch(url: str, seconds: float, limit: int) -> bytes:
    """The endpoint's text; ValueError for an answer that is not a 200, or is over `limit`."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http:
        async with http.get(url) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            return await body(response, limit)


def _parse_bytes(raw: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], Series]:
    return parse(raw.decode("utf-8", errors="replace"))
