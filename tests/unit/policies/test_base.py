"""What every policy shares: the bounds, and which one applied."""

from __future__ import annotations

import pytest

from policies.base import clamp


@pytest.mark.parametrize(
    ("proposal", "bounded"),
    [(11, (10, "max")), (10, (10, None)), (2, (2, None)), (1, (2, "min"))],
)
def test_clamp_says_which_bound_applied(proposal: int, bounded: tuple[int, str | None]) -> None:
    assert clamp(proposal, 2, 10) == bounded
