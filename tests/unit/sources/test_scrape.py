"""A Prometheus text endpoint read directly: a gauge summed, what only grows turned into a rate per
second, label matchers; whatever the endpoint sends, a number, a reason, or a ValueError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.sources.scrape import Scraped, matchers, parse, value_of

CADDY = """\
# TYPE caddy_http_requests_in_flight gauge
caddy_http_requests_in_flight{handler="reverse_proxy",server="srv0"} 3
caddy_http_requests_in_flight{handler="static",server="srv0"} 1
# TYPE caddy_http_requests_total counter
caddy_http_requests_total{handler="reverse_proxy",server="srv0"} %(proxied)s
caddy_http_requests_total{handler="static",server="srv0"} 7
# TYPE caddy_http_request_duration_seconds histogram
caddy_http_request_duration_seconds_bucket{le="+Inf"} %(proxied)s
caddy_http_request_duration_seconds_count %(proxied)s
caddy_http_request_duration_seconds_sum 1.5
"""


def read(at: float, proxied: float, previous: Scraped | None = None) -> Scraped:
    return Scraped(at, parse(CADDY % {"proxied": proxied}), previous)


@pytest.mark.parametrize(
    ("name", "match", "value"),
    [
        pytest.param("caddy_http_requests_in_flight", "", 4.0, id="a-gauge-summed"),
        pytest.param("caddy_http_requests_in_flight", 'handler="reverse_proxy"', 3.0, id="matched"),
        pytest.param("caddy_http_requests_in_flight", 'handler!="reverse_proxy"', 1.0, id="not-equal"),
        pytest.param("caddy_http_requests_in_flight", 'handler=~"rev.*"', 3.0, id="regex"),
        pytest.param("caddy_http_requests_in_flight", 'handler!~"rev.*"', 1.0, id="not-regex"),
        pytest.param("caddy_http_requests_total", 'handler="reverse_proxy"', 20.0, id="a-counter-as-a-rate"),
        pytest.param("caddy_http_request_duration_seconds_count", "", 20.0, id="a-histograms-count-as-a-rate"),
    ],
)  # fmt: skip
def test_a_sample_is_a_gauges_sum_or_a_counters_rate_per_second(
    name: str, match: str, value: float
) -> None:
    first = read(100.0, 1000)
    second = read(102.0, 1040, first)  # 40 requests in 2 s
    assert value_of(second, name, matchers(match)) == (value, None)


def test_a_rate_waits_for_its_second_read_and_a_restarted_counter_counts_from_zero() -> None:
    first = read(100.0, 1000)
    assert value_of(first, "caddy_http_requests_total", ()) == (None, None)
    restarted = read(102.0, 10, first)  # the proxy restarted: 10 since then
    assert value_of(
        restarted, "caddy_http_requests_total", matchers('handler="reverse_proxy"')
    ) == (5.0, None)


def test_a_series_new_since_the_last_read_counts_from_the_next() -> None:
    first = Scraped(100.0, parse('# TYPE r_total counter\nr_total{code="200"} 10\n'))
    second = Scraped(
        101.0,
        parse('# TYPE r_total counter\nr_total{code="200"} 14\nr_total{code="500"} 3\n'),
        first,
    )
    assert value_of(second, "r_total", ()) == (4.0, None)


@pytest.mark.parametrize(
    ("text", "name", "words"),
    [
        pytest.param(CADDY % {"proxied": 1}, "caddy_http_requests_total_typo", "no sample caddy_http_requests_total_typo{}", id="no-such-sample"),
        pytest.param("# TYPE g gauge\ng NaN\n", "g", "g sums to nan", id="nan"),
        pytest.param("# TYPE g gauge\ng +Inf\n", "g", "g sums to inf", id="infinity"),
    ],
)  # fmt: skip
def test_what_gives_no_number_says_why(text: str, name: str, words: str) -> None:
    value, why = value_of(Scraped(1.0, parse(text)), name, ())
    assert value is None and why is not None and words in why


def test_no_match_names_the_matchers() -> None:
    _, why = value_of(read(1.0, 5), "caddy_http_requests_in_flight", matchers('handler="api"'))
    assert why == 'no sample caddy_http_requests_in_flight{handler="api"} at the endpoint'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("handler=reverse", 'expected label="value"', id="unquoted"),
        pytest.param('handler="a" code="b"', 'expected label="value"', id="no-comma"),
        pytest.param('code=~"5(("', "not a regular expression", id="bad-regex"),
    ],
)
def test_matchers_that_are_none_say_where(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        matchers(text)


HOSTILE_VALUES = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["1e400", "-1e400", "NaN", "+Inf", "1" + "0" * 400, "0x10", "1_000", ""]),
    st.integers(min_value=10**300, max_value=10**400).map(str),
)
KINDS = st.sampled_from(["counter", "gauge", "histogram", "summary", "untyped", "info", "x"])


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=200) | st.builds(
    lambda kind, name, labels, value, then: (
        f"# TYPE {name} {kind}\n{name}{{{labels}}} {value}\n{name}{{{labels}}} {then}\n"
    ),
    KINDS, st.from_regex(r"\A[a-z_]{1,8}\Z"),
    st.text(max_size=20) | st.text(min_size=1000, max_size=3000).map(lambda v: f'a="{v}"'),
    HOSTILE_VALUES, HOSTILE_VALUES,
))  # fmt: skip
def test_whatever_an_endpoint_sends_is_samples_or_a_value_error(text: str) -> None:
    try:
        found = parse(text)
    except ValueError:
        return
    before = Scraped(1.0, found)
    for name, _labels in found:
        for scraped in (before, Scraped(2.0, found, before)):
            value, why = value_of(scraped, name, ())
            assert (value is None) or (why is None and math.isfinite(value))


def test_with_the_requests_held_in_flight_the_rate_is_of_those_that_arrive() -> None:
    # Caddy counts requests as they complete: 20 a second served while 40 arrive, the other 20
    # a second pile up in flight; and after a scale-up the backlog drains faster than 40.
    text = '# TYPE done_total counter\ndone_total{h="p"} %s\n# TYPE held gauge\nheld{h="p"} %s\n'
    first = Scraped(100.0, parse(text % (1000, 10)))
    saturated = Scraped(102.0, parse(text % (1040, 50)), first)
    assert value_of(saturated, "done_total", matchers('h="p"'), "held") == (40.0, None)
    draining = Scraped(104.0, parse(text % (1150, 20)), saturated)
    assert value_of(draining, "done_total", (), "held") == (40.0, None)
    assert value_of(first, "done_total", (), "held") == (None, None)  # a first read waits
