"""Failure: reconnect delays double to a cap, jittered in the upper half, back to the start on
reset; a part's bug is told once while it lasts, a supervised task starts over, and
cancellation always passes through."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.errors import EngineError, Faults, Reconnect


def test_waits_double_up_to_the_cap_each_drawn_from_its_upper_half() -> None:
    retry = Reconnect(0.25, 2.0)
    bounds = [0.25, 0.5, 1.0, 2.0, 2.0]
    for bound in bounds:
        wait = retry.next()
        assert bound / 2 <= wait <= bound


def test_a_reset_starts_again_from_the_first_wait() -> None:
    retry = Reconnect(0.5, 30.0)
    for _ in range(4):
        retry.next()
    retry.reset()
    assert retry.delay == 0.5
    assert 0.25 <= retry.next() <= 0.5


def test_a_fault_is_told_once_while_it_lasts_and_again_after_the_part_worked() -> None:
    told: list[tuple[str, str]] = []
    faults = Faults(lambda part, exc: told.append((part, str(exc))))
    for _ in range(3):
        with faults.guard("sampling"):
            raise KeyError("pid")
    with faults.guard("sampling"):
        pass
    with faults.guard("sampling"):
        raise KeyError("pid")
    with faults.guard("swarm services"):
        raise EngineError("the manager did not answer")
    assert told == [("sampling", "'pid'"), ("sampling", "'pid'"),
                    ("swarm services", "the manager did not answer")]  # fmt: skip


def test_a_supervised_task_that_fails_is_run_again_and_its_return_ends_it() -> None:
    told: list[str] = []
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"bug {len(runs)}")

    async def main() -> None:
        faults = Faults(lambda part, exc: told.append(str(exc)))
        async with asyncio.timeout(10):
            await faults.supervise("engine events", flaky)

    asyncio.run(main())
    assert runs == [0, 1, 2]
    assert told == ["bug 1", "bug 2"]


def test_cancellation_is_never_taken_for_a_fault() -> None:
    told: list[str] = []

    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        faults = Faults(lambda part, exc: told.append(str(exc)))
        task = asyncio.create_task(faults.supervise("API", forever))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert told == []
