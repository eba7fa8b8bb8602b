"""Operators' control records (backends/compose/controls.py): when a round must wait for the
engine's listing of them, and that a command written while the engine lists them holds."""

from __future__ import annotations

import asyncio
from typing import Any

from autoscaler.backends.compose.controls import ControlRecords
from autoscaler.control.controls import Control
from autoscaler.labels import ServiceKey

KEY = ServiceKey("shop", "web")


class Listed(dict[str, Any]):
    """A container as aiodocker lists it: its fields by key, and its id."""

    @property
    def id(self) -> str:
        return str(self["Id"])


class Engine:
    """The containers API the records use; `gate`, while set, holds a listing's answer."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, str]] = {}  # name -> labels
        self.gate: asyncio.Event | None = None
        self.containers = self

    async def list(self, **_: Any) -> list[Listed]:
        answer = [Listed(Id=n, Labels=labels) for n, labels in self.records.items()]
        if self.gate is not None:
            await self.gate.wait()  # the answer was made before what comes meanwhile
        return answer

    async def create(self, config: dict[str, Any], name: str) -> None:
        self.records[name] = config["Labels"]


async def test_the_records_are_stale_until_read_under_this_term_and_again_once_old() -> None:
    records = ControlRecords(Engine())  # type: ignore[arg-type]
    assert records.stale(term=3, now=100.0, longest=6.0)  # never read
    await records.read(term=3, now=100.0)
    assert not records.stale(term=3, now=105.0, longest=6.0)
    assert records.stale(term=4, now=105.0, longest=6.0)  # taken over since: read again
    assert records.stale(term=3, now=107.0, longest=6.0)  # too old


async def test_a_command_written_while_the_engine_lists_holds_after_the_listing() -> None:
    engine = Engine()
    records = ControlRecords(engine)  # type: ignore[arg-type]
    engine.gate = asyncio.Event()
    reading = asyncio.create_task(records.read(term=1, now=0.0))
    await asyncio.sleep(0)  # the listing's answer is made, and waits
    hold = Control("hold", since=1.0, replicas=4, who="ops")
    await records.write(KEY, hold, "busybox")
    engine.gate.set()
    await reading
    assert records.get(KEY) == hold
    # The next listing has it from the engine.
    engine.gate = None
    await records.read(term=1, now=2.0)
    assert records.get(KEY) == Control.from_record(engine.records[next(iter(engine.records))])
