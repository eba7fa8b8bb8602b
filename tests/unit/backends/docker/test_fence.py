"""The fence on actions: a request of an action decided under a lease term this instance no
longer holds is not sent; the term travels with the action's task from the moment it is made."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.backends.docker.fence import TERM, Fence
from autoscaler.errors import Fenced


def test_an_action_of_the_term_held_passes_and_one_of_another_term_is_dropped() -> None:
    held: list[int | None] = [7]
    fence = Fence(lambda: held[0])
    token = TERM.set(7)
    try:
        fence.check("creating clone web-2", "shop/web")  # the same term, still held
        held[0] = 8  # taken over, and taken back: a new term
        with pytest.raises(Fenced, match="not creating clone web-2: decided under lease term 7, "
                                         "and it holds term 8 now"):  # fmt: skip
            fence.check("creating clone web-2", "shop/web")
        held[0] = None  # lost (or not renewed within ttl/3 by the monotonic clock)
        with pytest.raises(Fenced, match="it holds none now"):
            fence.check("removing clone web-3", "shop/web")
        assert fence.dropped == 2
    finally:
        TERM.reset(token)


def test_outside_an_action_or_without_a_lease_nothing_is_fenced() -> None:
    Fence(lambda: None).check("creating clone web-2", "shop/web")  # no TERM: not an action
    assert Fence(lambda: None).dropped == 0


async def test_an_action_keeps_the_term_it_was_decided_under_when_the_term_moves_on() -> None:
    # The backend sets TERM before it steps its services; an action's task copies it as it is
    # made, so a later round under a new term does not lend the old action its term.
    held = [1]
    fence = Fence(lambda: held[0])
    frozen = asyncio.Event()

    async def action() -> None:
        await frozen.wait()  # the instance is stopped here, past its ttl
        fence.check("starting clone web-2", "shop/web")

    TERM.set(1)
    task = asyncio.create_task(action())
    await asyncio.sleep(0)
    held[0] = 2
    TERM.set(2)  # the next round, under the new term
    frozen.set()
    with pytest.raises(Fenced, match="decided under lease term 1"):
        await task
