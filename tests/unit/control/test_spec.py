"""Labels to a service spec: defaults, and an error naming the service, label and value; and
whatever labels a container carries, the parser answers with a spec or its own LabelError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.control import spec as specs
from autoscaler.control.spec import ServiceSpec
from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey, service_key
from autoscaler.sources.registry import OPTIONS
from policies.base import ReplicaSample, Signal
from policies.pipeline import Pipeline, Round


def parse(key: ServiceKey, labels: dict[str, str]) -> ServiceSpec:
    """The labels read as the app reads them: with every kind of metric source there is."""
    return specs.parse(key, labels, OPTIONS)


KEY = ServiceKey("shop", "web")
COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
GOOD = COMPOSE | {
    "autoscaler.enable": "true",
    "autoscaler.max": "5",
    "autoscaler.cpu.target": "60",
}


def test_defaults() -> None:
    spec = parse(KEY, GOOD)
    assert (spec.minimum, spec.maximum, spec.policy_name, spec.paused) == (
        1, 5, "target-tracking", False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "label", "value", "words"),
    [
        pytest.param({"autoscaler.max": None}, "autoscaler.max", None, "required", id="max-missing"),
        pytest.param({"autoscaler.max": "many"}, "autoscaler.max", "many", "whole number", id="max-not-a-number"),
        pytest.param({"autoscaler.min": "2.5"}, "autoscaler.min", "2.5", "whole number", id="min-fraction"),
        pytest.param({"autoscaler.min": "0"}, "autoscaler.min", "0", "0 needs a metric source", id="min-zero-without-a-metric"),
        pytest.param({"autoscaler.min": "-1"}, "autoscaler.min", "-1", "at least 0", id="min-negative"),
        pytest.param({"autoscaler.scale-down.to-zero-after": "later"}, "autoscaler.scale-down.to-zero-after", "later", "duration", id="to-zero-after-text"),
        pytest.param({"autoscaler.min": "9"}, "autoscaler.min", "9", "greater than max 5", id="min-above-max"),
        pytest.param({"autoscaler.cpu.target": None}, "autoscaler.cpu.target", None, "required", id="target-missing"),
        pytest.param({"autoscaler.cpu.target": "high"}, "autoscaler.cpu.target", "high", "number", id="target-text"),
        pytest.param({"autoscaler.cpu.target": "-5"}, "autoscaler.cpu.target", "-5", "greater than 0", id="target-negative"),
        pytest.param({"autoscaler.memory.target": "150"}, "autoscaler.memory.target", "150", "less than or equal to 100", id="memory-over-100"),
        pytest.param({"autoscaler.scale-down.tolerance": "2"}, "autoscaler.scale-down.tolerance", "2", "less than 1", id="tolerance-too-wide"),
        pytest.param({"autoscaler.scale-down.stabilization": "soon"}, "autoscaler.scale-down.stabilization", "soon", "duration", id="duration-text"),
        pytest.param({"autoscaler.scale-down.stabilization": "9" * 400}, "autoscaler.scale-down.stabilization", "9" * 400, "at most a year", id="duration-no-float-holds"),
        pytest.param({"autoscaler.schedule.lead": "9999999999h"}, "autoscaler.schedule.lead", "9999999999h", "at most a year", id="lead-past-any-date"),
        pytest.param({"autoscaler.allow-privileged": "yes please"}, "autoscaler.allow-privileged", "yes please", "true or false", id="allow-privileged-not-bool"),
        pytest.param({"autoscaler.maxx": "5"}, "autoscaler.maxx", "5", "unknown label", id="typo"),
        pytest.param({"autoscaler.policy": "magic"}, "autoscaler.policy", "magic", "unknown policy", id="unknown-policy"),
        pytest.param({"autoscaler.paused": "maybe"}, "autoscaler.paused", "maybe", "true or false", id="paused-not-bool"),
        pytest.param({"autoscaler.enable": "ture"}, "autoscaler.enable", "ture", "true or false", id="enable-typo"),
    ],
)  # fmt: skip
def test_bad_labels_name_service_label_and_value(
    change: dict[str, str | None], label: str, value: str | None, words: str
) -> None:
    labels = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(LabelError) as caught:
        parse(KEY, labels)
    error = caught.value
    assert (error.service, error.label, error.value) == ("shop/web", label, value)
    assert words in str(error)
    assert str(error).startswith(f"service shop/web: label {label}")


def test_outside_compose_the_service_label_is_required() -> None:
    labels = {k: v for k, v in GOOD.items() if not k.startswith("com.docker")}
    with pytest.raises(LabelError, match=r"autoscaler\.service: required outside Compose"):
        parse(ServiceKey("standalone", "x-1"), labels)


KNOWN = [
    "enable", "service", "min", "max", "policy", "paused", "cpu.target", "memory.target",
    "memory.mode", "scale-up.tolerance", "scale-down.tolerance", "noise-band", "warmup",
    "scale-up.stabilization", "scale-down.stabilization", "scale-up.period",
    "scale-up.max-replicas", "scale-up.max-percent", "scale-down.period",
    "scale-down.max-replicas", "scale-down.max-percent", "scale-up.cooldown",
    "scale-down.cooldown", "step", "clone-of", "scale-up.saturated-max-percent",
    "scale-down.to-zero-after", "metric.source", "metric.target", "metric.topic",
    "metric.field", "metric.max-age", "metric.fallback", "metric.fallback-after",
    "schedule.work", "schedule.lead", "schedule.timezone", "predict.horizon",
]  # fmt: skip
HOSTILE = [
    "9" * 400, "-" + "9" * 400, "1e400", "1e-400", "1" + "0" * 30, "-0", "0x10", "1_000",
    "9999999999h", "99999999999999999999ms", "1e308s", "\x00", "\udcff", "+", "#", "a/+/#",
    "mon-fri 08:00-18:00 min=3", "cron(* * * * *) 99999999999h min=2", "daily 23:00-01:00 max=0",
    "mqtt", "prometheus", "scrape", "predictive", "Europe/Berlin", "../../etc/passwd",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["true", "false", "0", "1", "-1", "50", "1e9", "nan", "inf", "5m", "0.5",
                     "", " ", "target", "guard", "hpa", "step", "target-tracking", "10s", "x"]),
    st.sampled_from(HOSTILE),
    st.text(max_size=12),
    st.text(min_size=200, max_size=2000),
)  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(KNOWN).map(lambda k: f"autoscaler.{k}"),
    st.text(max_size=20).map(lambda k: f"autoscaler.{k}"),
    st.sampled_from(["com.docker.compose.project", "com.docker.compose.service", "other"]),
)


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(KEYS, VALUES, max_size=12),
    st.lists(st.one_of(st.none(), st.floats(0, 1e6)), min_size=1, max_size=4),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_random_labels_give_a_spec_or_a_label_error_and_a_spec_always_decides(
    labels: dict[str, str], cpus: list[float | None], value: float | None
) -> None:
    # Whatever the labels say, the parser answers with a spec or its own LabelError, and a
    # spec it gave decides a round, whatever the replicas and the metric read: an exception
    # out of either would stop the service every round instead of naming its label.
    labels = {"autoscaler.enable": "true", **labels}
    key = service_key(labels, "fuzzed-1")
    try:
        spec = parse(key, labels)
    except LabelError as exc:
        assert exc.label.startswith("autoscaler.")
        assert str(exc).startswith(f"service {key}: label {exc.label}")
        return
    assert 1 <= spec.minimum <= spec.maximum or spec.minimum == 0
    samples = tuple(ReplicaSample(f"r{i}", cpu) for i, cpu in enumerate(cpus))
    signal = None if spec.metric is None else Signal(spec.metric.name, value, age=0.0)
    pipeline = Pipeline(spec.new_policy(), spec.behavior)
    for now in (1_000.0, 1_015.0):
        round_ = Round(spec.minimum, spec.maximum, samples, now, 1.764e9 + now, signal,
                       schedule=spec.schedule, zero=spec.zero)  # fmt: skip
        if pipeline.zero(round_, running=True) is None:
            decision = pipeline.decide(round_).decision
            assert 0 <= decision.desired <= spec.maximum


def test_nan_and_infinity_are_not_targets() -> None:
    base = {"autoscaler.enable": "true", "autoscaler.service": "s", "autoscaler.max": "3"}
    for value in ("nan", "inf", "-inf"):
        try:
            parse(ServiceKey("standalone", "s"), base | {"autoscaler.cpu.target": value})
        except LabelError as exc:
            assert exc.label == "autoscaler.cpu.target"
        else:
            raise AssertionError(f"cpu.target={value} was accepted")


MQTT_BASE = {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "worker",
    "autoscaler.enable": "true",
    "autoscaler.max": "10",
}
MQTT = {"autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": "q/jobs",
        "autoscaler.metric.target": "10"}  # fmt: skip
WORKER = ServiceKey("shop", "worker")


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.source": "mqtt", "autoscaler.metric.target": "5"}, "autoscaler.metric.topic", "required with metric.source=mqtt", id="mqtt-without-topic"),
        pytest.param({"autoscaler.metric.source": "prometheus", "autoscaler.metric.url": "http://p:9090", "autoscaler.metric.target": "5"}, "autoscaler.metric.query", "required", id="prometheus-without-query"),
        pytest.param(MQTT | {"autoscaler.metric.url": "http://p:9090"}, "autoscaler.metric.url", "not for metric.source=mqtt", id="a-url-for-mqtt"),
        pytest.param({"autoscaler.metric.source": "kafka", "autoscaler.metric.target": "5"}, "autoscaler.metric.source", "mqtt", id="unknown-source"),
        pytest.param({k: v for k, v in MQTT.items() if k != "autoscaler.metric.target"}, "autoscaler.metric.source", "needs metric.target", id="source-without-target"),
        pytest.param({"autoscaler.metric.target": "5"}, "autoscaler.metric.target", "needs metric.source", id="target-without-source"),
        pytest.param(MQTT | {"autoscaler.metric.target": "0"}, "autoscaler.metric.target", "greater than 0", id="zero-target"),
        pytest.param({}, "autoscaler.cpu.target", "required (or metric.target", id="no-target-at-all"),
    ],
)  # fmt: skip
def test_bad_metric_labels_are_label_errors(labels: dict[str, str], label: str, words: str) -> None:
    with pytest.raises(LabelError) as caught:
        parse(WORKER, MQTT_BASE | labels)
    assert caught.value.label == label
    assert words in str(caught.value)


def test_a_metric_alone_is_enough_and_its_source_is_parsed() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.metric.max-age": "30s"})
    assert spec.metric is not None
    assert (spec.metric.source, spec.metric.options.topic, spec.metric.max_age) == (
        "mqtt",
        "q/jobs",
        30,
    )
    assert spec.metric.name == "mqtt q/jobs"


SCRAPE = {"autoscaler.metric.source": "scrape", "autoscaler.metric.url": "http://proxy:2019/metrics",
          "autoscaler.metric.name": "caddy_http_requests_total", "autoscaler.metric.target": "4"}  # fmt: skip


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({k: v for k, v in SCRAPE.items() if k != "autoscaler.metric.name"}, "autoscaler.metric.name", "required with metric.source=scrape", id="no-sample-name"),
        pytest.param(SCRAPE | {"autoscaler.metric.match": "handler=proxy"}, "autoscaler.metric.match", 'expected label="value"', id="a-bad-matcher"),
        pytest.param(SCRAPE | {"autoscaler.metric.query": "up"}, "autoscaler.metric.query", "not for metric.source=scrape", id="a-query-for-scrape"),
        pytest.param(SCRAPE | {"autoscaler.metric.name": "not a name"}, "autoscaler.metric.name", "should match pattern", id="not-a-metric-name"),
    ],
)  # fmt: skip
def test_bad_scrape_labels_are_label_errors(labels: dict[str, str], label: str, words: str) -> None:
    with pytest.raises(LabelError) as caught:
        parse(WORKER, MQTT_BASE | labels)
    assert caught.value.label == label
    assert words in str(caught.value)


def test_a_scrape_source_is_parsed_with_its_matchers() -> None:
    spec = parse(
        WORKER, MQTT_BASE | SCRAPE | {"autoscaler.metric.match": 'handler="reverse_proxy"'}
    )
    assert spec.metric is not None
    assert spec.metric.name == 'scrape caddy_http_requests_total{handler="reverse_proxy"}'
    assert [str(m) for m in spec.metric.options.matchers] == ['handler="reverse_proxy"']


def test_a_fallback_count_and_its_wait_are_read_with_the_metric() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.metric.fallback": "6",
                                             "autoscaler.metric.fallback-after": "1m"})  # fmt: skip
    assert spec.metric is not None
    assert (spec.metric.fallback, spec.metric.fallback_after) == (6, 60)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        pytest.param({"autoscaler.metric.fallback": "-1"}, "greater than or equal to 0", id="negative"),
        pytest.param({"autoscaler.metric.fallback": "six"}, "valid integer", id="not-a-number"),
        pytest.param({"autoscaler.metric.fallback-after": "soon"}, "", id="not-a-duration"),
    ],
)  # fmt: skip
def test_a_bad_fallback_is_a_label_error_naming_it(labels: dict[str, str], words: str) -> None:
    with pytest.raises(LabelError) as caught:
        parse(WORKER, MQTT_BASE | MQTT | labels)
    assert caught.value.label == next(iter(labels))
    assert words in str(caught.value)


def test_schedule_windows_and_their_time_zone_are_read_and_set_min_and_max_in_force() -> None:
    labels = MQTT_BASE | {"autoscaler.cpu.target": "50",
                          "autoscaler.schedule.work": "Mon-Fri 08:00-18:00 min=4",
                          "autoscaler.schedule.timezone": "Europe/Berlin"}  # fmt: skip
    spec = parse(WORKER, labels)
    assert [w.name for w in spec.schedule.windows] == ["work"]
    monday_9_berlin = 1_795_996_800.0 + 8 * 3600  # Monday 2026-11-30 08:00 UTC, 09:00 in Berlin
    in_force, found = spec.in_force(monday_9_berlin)
    assert (in_force.minimum, in_force.maximum) == (4, 10)
    assert found.reason == "schedule work (min 4): min 4, max 10"
    assert spec.in_force(monday_9_berlin + 10 * 3600)[0] is spec  # 19:00 in Berlin
    early = parse(WORKER, labels | {"autoscaler.schedule.lead": "2m"})
    assert early.schedule.lead == 120
    assert early.in_force(monday_9_berlin - 3600 - 90)[0].minimum == 4  # 07:58:30 in Berlin


@pytest.mark.parametrize(
    ("label", "value", "words"),
    [
        ("autoscaler.schedule.work", "weekdays 8-18 min=4", "expected"),
        ("autoscaler.schedule.timezone", "Mars/Olympus", "not an IANA time zone"),
        ("autoscaler.schedule.a b", "08:00-09:00 min=2", "a window's name"),
        ("autoscaler.schedule.lead", "early", "expected a duration"),
    ],
)
def test_a_bad_schedule_label_is_a_label_error_naming_it(
    label: str, value: str, words: str
) -> None:
    labels = MQTT_BASE | {"autoscaler.cpu.target": "50", label: value}
    with pytest.raises(LabelError) as caught:
        parse(WORKER, labels)
    assert caught.value.label == label
    assert words in str(caught.value)


def test_min_zero_with_a_metric_is_a_rule_to_sleep_and_wake_by() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.min": "0",
                                             "autoscaler.metric.activation": "2",
                                             "autoscaler.scale-down.to-zero-after": "90s"})  # fmt: skip
    assert spec.minimum == 0
    assert spec.zero is not None
    assert (spec.zero.after, spec.zero.activation) == (90, 2)
    assert parse(WORKER, MQTT_BASE | MQTT).zero is None


def test_without_its_label_the_sleep_waits_five_minutes_and_any_demand_wakes() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.min": "0"})
    assert spec.zero is not None
    assert (spec.zero.after, spec.zero.activation) == (300, None)


def test_a_window_that_sets_a_min_above_zero_keeps_the_service_awake() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.min": "0",
                                             "autoscaler.schedule.work": "00:00-24:00 min=1"})  # fmt: skip
    in_force, _ = spec.in_force(0.0)
    assert in_force.minimum == 1
    assert in_force.zero is None


def test_the_sleep_label_the_autoscaler_writes_on_a_swarm_service_is_no_label_error() -> None:
    spec = parse(WORKER, MQTT_BASE | MQTT | {"autoscaler.min": "0", "autoscaler.asleep": "true"})
    assert spec.minimum == 0


@pytest.mark.parametrize("url", ["redis://scaler:hunter2@queue:6379/0", "redis://:hunter2@queue/0",
                                 "http://user:hunter2@prometheus:9090"])  # fmt: skip
def test_a_password_put_in_a_url_label_is_never_repeated_by_its_error(url: str) -> None:
    source = "redis" if url.startswith("redis") else "prometheus"
    labels = GOOD | {"autoscaler.metric.source": source, "autoscaler.metric.url": url,
              "autoscaler.metric.list": "celery", "autoscaler.metric.target": "5"}  # fmt: skip
    if source == "prometheus":
        del labels["autoscaler.metric.list"]
        labels["autoscaler.metric.query"] = "up"
        labels["autoscaler.metric.url"] = url + "/ nope"  # a URL with a space: refused
    with pytest.raises(LabelError) as caught:
        parse(KEY, labels)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in str(caught.value.event_attributes())
    assert caught.value.label == "autoscaler.metric.url"
