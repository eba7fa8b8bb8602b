"""Option values are label strings: durations in seconds or with a unit, or a clear error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.options import BehaviorOptions


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_a_duration_is_seconds_or_takes_a_unit(value: str, seconds: float) -> None:
    assert (
        BehaviorOptions.model_validate({"scale-down.stabilization": value}).down_stabilization
        == seconds
    )


def test_a_duration_that_is_none_says_what_one_looks_like() -> None:
    with pytest.raises(ValidationError) as caught:
        BehaviorOptions.model_validate({"scale-down.stabilization": "soon"})
    message = caught.value.errors()[0]["msg"]
    assert message == "Value error, expected a duration such as 30, 30s, 5m or 1h"
