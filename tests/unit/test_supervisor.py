"""A part's bug is told once while it lasts; a supervised task starts over; cancellation always
passes through."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.errors import EngineError
from autoscaler.supervisor import Faults


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
