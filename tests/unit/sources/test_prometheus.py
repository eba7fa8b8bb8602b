"""A Prometheus instant query's answer: one finite number, or an AnswerError saying why not,
whatever the server sends back."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.sources.prometheus import AnswerError, number_of


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"q": str(i)}, "value": [1764316800.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("body", "value"),
    [
        pytest.param({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}}, 42.0, id="a-scalar"),
        pytest.param(vector("40", "2.5"), 42.5, id="a-vector-summed"),
        pytest.param(vector("-3"), -3.0, id="negative-is-a-number"),
    ],
)  # fmt: skip
def test_an_answer_is_a_scalar_or_the_sum_of_a_vector(body: dict[str, Any], value: float) -> None:
    assert number_of(body) == value


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(vector("NaN"), "gave NaN", id="nan-of-an-idle-rate-ratio"),
        pytest.param(vector("3", "+Inf"), "gave +Inf", id="infinity"),
        pytest.param(vector("1e308", "1e308"), "sum of the answer is inf", id="a-sum-too-big"),
        pytest.param(vector(), "matched nothing", id="an-empty-vector"),
        pytest.param({"status": "error", "error": "parse error"}, "parse error", id="an-error"),
        pytest.param({"status": "success", "data": {"resultType": "matrix", "result": []}}, "a matrix is not one number", id="a-matrix"),
        pytest.param({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 3]}]}}, "not [time, value]", id="a-number-not-a-string"),
        pytest.param({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "x"]}]}}, "not a number", id="words"),
        pytest.param({"status": "success"}, "without data", id="no-data"),
        pytest.param([1, 2], "not a JSON object", id="a-list"),
    ],
)  # fmt: skip
def test_what_is_not_one_finite_number_says_why(body: Any, words: str) -> None:
    with pytest.raises(AnswerError, match=re.escape(words)):
        number_of(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
VALUES = st.sampled_from(["1", "0", "-1", "NaN", "+Inf", "-Inf", "1e308", "x", "", "1e-300"])
SAMPLE = st.one_of(
    st.fixed_dictionaries({"value": st.tuples(st.floats(), VALUES).map(list)}),
    JSON,
)
ANSWERS = st.one_of(
    JSON,
    st.fixed_dictionaries({
        "status": st.sampled_from(["success", "error", None]),
        "data": st.one_of(JSON, st.fixed_dictionaries({
            "resultType": st.sampled_from(["vector", "scalar", "matrix", "string", None]),
            "result": st.one_of(st.lists(SAMPLE, max_size=4), st.tuples(st.floats(), VALUES).map(list), JSON),
        })),
    }),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(ANSWERS)
def test_whatever_a_server_answers_gives_a_finite_number_or_an_answer_error(body: Any) -> None:
    try:
        value = number_of(body)
    except AnswerError as exc:
        assert str(exc)
    else:
        assert math.isfinite(value)
