"""A metric source: instant PromQL queries, asked once a round, all at once, before the services
step.

    metric.url     the Prometheus server's base URL
    metric.query   an instant query: one number, or a vector whose values are summed

A query's answer is one number: a scalar, or the sum of a vector's samples. What is no such
number is a missing value, with the reason: a server that does not answer or says `error`, a
vector that matched nothing, an answer of another shape, and `NaN` or `±Inf` (what an idle
`rate()` ratio gives: 0/0).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from autoscaler.errors import Faults
from autoscaler.sources.base import Member, Needs
from autoscaler.sources.bounds import MAX_PAYLOAD, TooLarge, parsed
from autoscaler.sources.bounds import body as http_body

logger = logging.getLogger(__name__)

_QUERY_TIMEOUT = 5.0  # seconds, and never more than half an interval: a round must not wait


class Options(BaseModel):
    """A Prometheus source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: str = Field(alias="metric.url", pattern=r"^https?://\S+$")
    query: str = Field(alias="metric.query", min_length=1)

    @property
    def name(self) -> str:
        return f"prometheus {self.query}"


class AnswerError(ValueError):
    """The server answered, but not with one finite number."""


@dataclass(frozen=True, slots=True)
class Answer:
    value: float | None
    at: float
    """Our monotonic clock when it was asked."""
    error: str | None = None


def number_of(body: Any) -> float:
    """The one number an instant query's JSON answer carries; AnswerError saying why not."""
    if not isinstance(body, dict):
        raise AnswerError(f"an answer that is not a JSON object: {_shown(body)}")
    if body.get("status") != "success":
        raise AnswerError(f"status {body.get('status')!r}: {body.get('error') or 'no error given'}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise AnswerError("an answer without data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        values = [_sample_value(result)]
    elif kind == "vector":
        if not isinstance(result, list):
            raise AnswerError("a vector that is not a list")
        if not result:
            raise AnswerError("the query matched nothing")
        values = [_sample_value(s.get("value") if isinstance(s, dict) else None) for s in result]
    else:
        raise AnswerError(f"a {kind} is not one number")
    total = sum(values)
    if not math.isfinite(total):
        raise AnswerError(f"the sum of the answer is {total}")
    return total


def _sample_value(pair: Any) -> float:
    """`[<time>, "<value>"]` -> the value, which must be finite."""
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise AnswerError(f"a sample that is not [time, value]: {_shown(pair)}")
    try:
        value = float(pair[1])
    except ValueError:
        raise AnswerError(f"a sample value that is not a number: {_shown(pair[1])}") from None
    if not math.isfinite(value):
        # Prometheus's 0/0 of an idle rate() ratio: no demand measured, not a demand of NaN.
        raise AnswerError(f"the query gave {pair[1]}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


async def instant(url: str, query: str, seconds: float, limit: int = MAX_PAYLOAD) -> float:
    """An instant query's number; AnswerError, aiohttp's errors or TimeoutError otherwise."""
    endpoint = f"{url.rstrip('/')}/api/v1/query"
    timeout = aiohttp.ClientTimeout(total=seconds)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(endpoint, params={"query": query}) as response:
            try:
                raw = await http_body(response, limit)
            except TooLarge as exc:
                raise AnswerError(str(exc)) from None
    try:
        answer = await parsed(raw, json.loads)
    except ValueError:
        raise AnswerError(f"HTTP {response.status}, not JSON") from None
    except RecursionError:
        raise AnswerError(f"HTTP {response.status}, JSON nested too deeply to read") from None
    return number_of(answer)


class Queries:
    def __init__(
        self,
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
        faults: Faults | None = None,
        limit: int = MAX_PAYLOAD,
    ) -> None:
        self._seconds = min(_QUERY_TIMEOUT, interval / 2)
        self._limit = limit  # bytes of an answer read at most
        self._now = now
        self._faults = faults or Faults()
        self._answers: dict[tuple[str, str], Answer] = {}

    @classmethod
    def made(cls, needs: Needs) -> Queries:
        return cls(
            interval=needs.interval, now=needs.now, faults=needs.faults, limit=needs.max_payload
        )

    async def want(self, wanted: Sequence[Options]) -> None:
        await self.ask((o.url, o.query) for o in wanted)

    def members(self, options: Options) -> list[Member]:
        answer = self.answer(options.url, options.query)
        return (
            [] if answer is None else [Member(options.query, answer.value, answer.at, answer.error)]
        )

    async def run(self) -> None:
        """Nothing long-lived: the queries are asked each round."""

    async def ask(self, queries: Iterable[tuple[str, str]]) -> None:
        """Ask every query at once; forget the answers of queries nobody asks any more."""
        wanted = set(queries)
        for gone in set(self._answers) - wanted:
            del self._answers[gone]
        await asyncio.gather(*(self._ask(url, query) for url, query in wanted))

    def answer(self, url: str, query: str) -> Answer | None:
        return self._answers.get((url, query))

    async def _ask(self, url: str, query: str) -> None:
        asked = self._now()
        try:
            value = await instant(url, query, self._seconds, self._limit)
        except AnswerError as exc:
            self._answers[(url, query)] = Answer(
                None, asked, f"{url} answered {query!r} with {exc}"
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{url} did not answer {query!r}: {exc or type(exc).__name__}"
            self._answers[(url, query)] = Answer(None, asked, error)
        except Exception as exc:
            # A bug of ours reading the answer: this source is missing, the others are not.
            self._faults.failed(f"prometheus {url}", exc)
            error = f"{url}: unexpected {type(exc).__name__} reading the answer to {query!r}"
            self._answers[(url, query)] = Answer(None, asked, error)
        else:
            self._answers[(url, query)] = Answer(value, asked)
