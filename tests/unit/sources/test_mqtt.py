"""MQTT metric payloads: a number, or one at a JSON path with the publisher's time; whatever the
bytes, a number or a ValueError saying why; topics followed, retracted and forgotten."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.settings import MqttSettings
from autoscaler.sources.mqtt import Options, Topics, matches, parse


@pytest.mark.parametrize(
    ("payload", "field", "value", "published"),
    [
        pytest.param(b"42", None, 42.0, None, id="a-number"),
        pytest.param(b" 4.5\n", None, 4.5, None, id="spaces"),
        pytest.param(b'{"queue": {"depth": 7}}', "queue.depth", 7.0, None, id="a-json-path"),
        pytest.param(b'{"depth": 7, "time": 1764316800.5}', "depth", 7.0, 1764316800.5, id="with-its-time"),
    ],
)  # fmt: skip
def test_a_payload_is_a_number_or_json_with_the_number_at_a_path(
    payload: bytes, field: str | None, value: float, published: float | None
) -> None:
    assert parse(payload, field) == (value, published)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        pytest.param(b"lots", None, "payload 'lots' is not a number", id="text"),
        pytest.param(b"nan", None, "not a finite number", id="nan"),
        pytest.param(b"-inf", None, "not a finite number", id="infinity"),
        pytest.param(b"[1]", "depth", "has no depth", id="not-an-object"),
        pytest.param(b'{"depth": "7"}', "depth", "depth in payload", id="a-string"),
        pytest.param(b'{"depth": true}', "depth", "is not a number", id="a-bool"),
        pytest.param(b'{"depth": 1e999}', "depth", "not a finite number", id="json-infinity"),
        pytest.param(b'{"depth": 7, "time": "noon"}', "depth", "time in payload", id="a-time-that-is-not-one"),
        pytest.param(b"{oops", "depth", "is not JSON", id="broken-json"),
        pytest.param(b'{"depth": 1' + b"0" * 400 + b"}", "depth", "not a finite number", id="an-integer-no-float-holds"),
        pytest.param(b'{"depth": -1' + b"0" * 400 + b"}", "depth", "not a finite number", id="a-negative-one"),
        pytest.param(b'{"depth": 1, "time": 1' + b"0" * 400 + b"}", "depth", "time in payload", id="a-time-no-float-holds"),
        pytest.param(b"[" * 30_000 + b"]" * 30_000, "depth", "nested too deeply", id="deep-nesting"),
        pytest.param(b"9" * 70_000, None, "a payload of 70000 bytes, over the limit of 65536", id="too-large"),
    ],
)  # fmt: skip
def test_a_payload_that_is_not_a_number_says_why(
    payload: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        parse(payload, field)


HOSTILE = st.one_of(
    st.integers(min_value=10**300, max_value=10**500).map(lambda n: f'{{"depth": {n}}}'.encode()),
    st.integers(1, 5000).map(lambda n: b'{"depth": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 400).map(lambda n: b"9" * n + b"e" + b"9" * n),
    st.sampled_from([b"1e400", b"-1e400", b"1e-400", b"\xff\xfe", b"\x00", b"0x10", b"1_000"]),
)


@settings(max_examples=500, deadline=None)
@given(
    payload=st.one_of(
        HOSTILE,
        st.binary(max_size=64),
        st.from_regex(rb"\A-?[0-9.eE+-]{1,12}\Z"),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["depth", "time", "q"]), inner, max_size=3),
            max_leaves=8,
        ).map(lambda v: __import__("json").dumps(v).encode()),
    ),
    field=st.sampled_from([None, "depth", "q.depth"]),
)  # fmt: skip
def test_whatever_is_published_gives_a_finite_number_or_a_value_error(
    payload: bytes, field: str | None
) -> None:
    try:
        value, published = parse(payload, field)
    except ValueError as exc:
        assert str(exc)
    else:
        assert value == value and abs(value) != float("inf")
        assert published is None or abs(published) != float("inf")


@pytest.mark.parametrize(
    ("topic", "pattern", "expected"),
    [
        ("shop/eu/depth", "shop/+/depth", True),
        ("shop/eu/depth", "shop/#", True),
        ("shop/eu/depth", "shop/us/depth", False),
        ("shop/eu/depth", "shop/#/depth", False),  # no filter: matches nothing, never raises
    ],
)
def test_topics_match_filters_the_mqtt_way(topic: str, pattern: str, expected: bool) -> None:
    assert matches(topic, pattern) is expected


def test_an_empty_payload_retracts_a_topic_and_patterns_no_service_wants_are_forgotten() -> None:
    topics = Topics(MqttSettings(enabled=False), now=lambda: 1.0, wall=lambda: 1.0)
    asyncio.run(topics.follow({"shop/+/depth", "blog/depth"}))
    topics._receive("shop/eu/depth", b"500", retained=False)
    topics._receive("shop/us/depth", b"20", retained=False)
    topics._receive("blog/depth", b"3", retained=False)
    assert sorted(topics.heard("shop/+/depth")) == ["shop/eu/depth", "shop/us/depth"]

    topics._receive("shop/eu/depth", b"", retained=True)  # `mosquitto_pub -r -n`: cleared
    assert sorted(topics.heard("shop/+/depth")) == ["shop/us/depth"]

    asyncio.run(topics.follow({"shop/+/depth"}))
    assert topics.heard("blog/depth") == {}
    assert topics._heard.keys() == {"shop/us/depth"}


def test_a_new_value_is_told_as_it_arrives_to_each_source_it_matches_and_a_repeat_is_not() -> None:
    told: list[Options] = []
    topics = Topics(MqttSettings(enabled=False), now=lambda: 1.0, wall=lambda: 1.0,
                    arrived=told.append)  # fmt: skip
    eu = Options.model_validate({"metric.topic": "shop/eu/depth"})
    every = Options.model_validate({"metric.topic": "shop/+/depth"})
    blog = Options.model_validate({"metric.topic": "blog/depth"})
    asyncio.run(topics.want([eu, every, blog]))
    topics._receive("shop/eu/depth", b"500", retained=False)
    assert told == [eu, every]
    topics._receive("shop/eu/depth", b"500", retained=False)  # the exporter's period: no news
    topics._receive("shop/us/depth", b"20", retained=False)
    assert told == [eu, every, every]
    topics._receive("shop/us/depth", b"", retained=True)  # retracted: the sum moved
    assert told == [eu, every, every, every]
    topics._receive("blog/depth", b"7", retained=True)  # handed over on subscription: no news
    assert told == [eu, every, every, every]
