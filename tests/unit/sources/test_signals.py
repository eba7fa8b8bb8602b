"""A source's value as the policy sees it: a number with its age, or missing with the reason. A
wildcard's sum is missing when any one of its members is stale or malformed; a retained value
is only as fresh as its publisher says."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from autoscaler.control.spec import MetricSource, parse
from autoscaler.labels import ServiceKey
from autoscaler.settings import MqttSettings
from autoscaler.sources.mqtt import Topics
from autoscaler.sources.prometheus import Answer, Queries
from autoscaler.sources.registry import OPTIONS
from autoscaler.sources.signals import Signals


@dataclass
class Clock:
    monotonic: float = 1000.0
    wall: float = 1_764_316_800.0

    def pass_(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


def signals(clock: Clock) -> Signals:
    made = Signals(MqttSettings(enabled=False), interval=2.0, now=lambda: clock.monotonic,
                   wall=lambda: clock.wall)  # fmt: skip
    return made


def topics(s: Signals) -> Topics:
    reader = s.readers["mqtt"]
    assert isinstance(reader, Topics)
    return reader


def queries(s: Signals) -> Queries:
    reader = s.readers["prometheus"]
    assert isinstance(reader, Queries)
    return reader


def metric(**labels: str) -> MetricSource:
    """A source as a service's labels name it (keys below `autoscaler.`)."""
    base = {"autoscaler.enable": "true", "autoscaler.service": "w", "autoscaler.max": "3",
            "autoscaler.metric.target": "1"}  # fmt: skip
    spec = parse(
        ServiceKey("standalone", "w"),
        base | {f"autoscaler.{k}": v for k, v in labels.items()},
        OPTIONS,
    )
    assert spec.metric is not None
    return spec.metric


def source(topic: str, **more: str) -> MetricSource:
    return metric(
        **{"metric.source": "mqtt", "metric.topic": topic, "metric.max-age": "10s", **more}
    )


def follow(s: Signals, *sources: MetricSource) -> None:
    asyncio.run(s.follow(sources))


def test_a_wildcard_sums_its_members_and_a_stale_one_makes_the_sum_missing() -> None:
    clock = Clock()
    s, depth = signals(clock), source("shop/+/depth")
    follow(s, depth)
    topics(s)._receive("shop/eu/depth", b"500", retained=False)
    topics(s)._receive("shop/us/depth", b"20", retained=False)
    assert s.read(depth).value == 520

    clock.pass_(8)
    topics(s)._receive("shop/us/depth", b"20", retained=False)  # eu's publisher stalls
    clock.pass_(4)
    read = s.read(depth)
    # Never 20: that would be a scale-down on a member nobody measured.
    assert read.value is None
    assert read.error == "shop/eu/depth: no value for longer than its max age of 10s"


def test_a_malformed_member_makes_the_sum_missing_and_ages_like_a_good_one() -> None:
    clock = Clock()
    s, depth = signals(clock), source("shop/+/depth")
    follow(s, depth)
    topics(s)._receive("shop/eu/depth", b"lots", retained=False)
    topics(s)._receive("shop/us/depth", b"20", retained=False)
    assert s.read(depth).error == "shop/eu/depth: payload 'lots' is not a number"

    clock.pass_(11)
    topics(s)._receive("shop/us/depth", b"20", retained=False)
    assert s.read(depth).error == "shop/eu/depth: no value for longer than its max age of 10s"

    topics(s)._receive("shop/eu/depth", b"", retained=False)  # its publisher retracted it
    assert s.read(depth).value == 20


def test_a_retained_value_is_as_fresh_as_its_publisher_says() -> None:
    clock = Clock()
    s = signals(clock)
    plain, timed = source("q/plain"), source("q/timed", **{"metric.field": "depth"})
    follow(s, plain, timed)
    # Handed over on subscription, after a reconnect: retained hours ago, or a second ago?
    topics(s)._receive("q/plain", b"90", retained=True)
    topics(s)._receive("q/timed", f'{{"depth": 90, "time": {clock.wall - 3}}}'.encode(), True)
    assert s.read(plain).value is None
    assert s.read(plain).error == "a retained value of unknown age (no time in its payload)"
    assert (s.read(timed).value, s.read(timed).age) == (90, 3)

    topics(s)._receive("q/timed", f'{{"depth": 90, "time": {clock.wall - 3600}}}'.encode(), True)
    assert s.read(timed).value is None  # an hour old by its publisher's word

    topics(s)._receive("q/plain", b"90", retained=False)  # published now
    assert s.read(plain).value == 90


def test_nothing_yet_is_no_error_until_the_max_age_has_passed() -> None:
    clock = Clock()
    s, depth = signals(clock), source("q/jobs")
    follow(s, depth)
    assert (s.read(depth).value, s.read(depth).error) == (None, None)
    clock.pass_(11)
    assert s.read(depth).error == "no value yet, after its max age of 10s"


def test_a_prometheus_answer_that_is_no_number_is_missing_with_its_reason() -> None:
    clock = Clock()
    s = signals(clock)
    query = metric(
        **{"metric.source": "prometheus", "metric.url": "http://p:9090", "metric.query": "q"}
    )
    queries(s)._answers[("http://p:9090", "q")] = Answer(None, clock.monotonic, "gave NaN")
    assert (s.read(query).value, s.read(query).error) == (None, "gave NaN")
    queries(s)._answers[("http://p:9090", "q")] = Answer(7.0, clock.monotonic)
    assert s.read(query).value == 7.0


def test_a_sum_too_big_to_be_finite_is_missing() -> None:
    clock = Clock()
    s, depth = signals(clock), source("q/+")
    follow(s, depth)
    topics(s)._receive("q/a", b"1e308", retained=False)
    topics(s)._receive("q/b", b"1e308", retained=False)
    assert s.read(depth).error == "the sum is inf"


def test_sources_no_service_names_any_more_are_forgotten() -> None:
    clock = Clock()
    s = signals(clock)
    one, two = source("q/one"), source("q/two")
    follow(s, one, two)
    topics(s)._receive("q/one", b"1", retained=False)
    topics(s)._receive("q/two", b"2", retained=False)
    queries(s)._answers[("http://p:9090", "gone")] = Answer(1.0, clock.monotonic)
    follow(s, one)
    assert topics(s)._heard.keys() == {"q/one"}
    assert s._since.keys() == {one.name}
    assert queries(s)._answers == {}


def test_a_pushed_value_is_told_once_for_each_source_however_many_services_name_it() -> None:
    told: list[MetricSource] = []
    clock = Clock()
    s = Signals(MqttSettings(enabled=False), interval=2.0, now=lambda: clock.monotonic,
                wall=lambda: clock.wall, arrived=told.append)  # fmt: skip
    shared, other = source("shop/depth"), source("shop/depth", **{"metric.max-age": "30s"})
    follow(s, shared, source("shop/depth"), other)  # two services name `shared`
    topics(s)._receive("shop/depth", b"12", retained=False)
    assert told == [shared, other]  # the same topic, read with another max age: its own source
