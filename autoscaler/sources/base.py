"""What every metric source is: its own options (a frozen pydantic model of its `metric.*`
labels, with a `name`), and a reader that fetches or follows what the services name and gives
each source's value as the members it is made of.

    want(wanted)        this round's sources of its kind: follow or ask them, forget the rest
    members(options)    the values a source is made of now (a wildcard topic's several, a
                        query's one); none while there is none yet
    run()               a long-lived part, where the kind has one (MQTT's connection)

A new kind is one module with its Options and its Reader, and one line in registry.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, SecretStr

from autoscaler.errors import Faults
from autoscaler.settings import SECRETS_DIR, MqttSettings
from autoscaler.sources.bounds import MAX_PAYLOAD, MAX_SCRAPE


class Member(NamedTuple):
    """One value a source is made of: a topic's (of a wildcard's several), or a query's."""

    name: str
    value: float | None
    at: float
    """Our monotonic clock when it was measured; -inf when nobody knows."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Needs:
    """What a reader may be made with."""

    mqtt: MqttSettings
    interval: float
    now: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    faults: Faults = field(default_factory=Faults)
    max_payload: int = MAX_PAYLOAD
    """Bytes a pushed value or a query's answer may have; more is refused unread."""
    max_scrape: int = MAX_SCRAPE
    """Bytes a scraped endpoint's text may have."""
    secrets_dir: Path = SECRETS_DIR
    secrets: Mapping[str, SecretStr] = field(default_factory=dict)
    """Where the secrets a source names (`metric.credentials`) are found: a file in
    `secrets_dir`, else a setting `AUTOSCALER_SECRETS__<NAME>` (credentials.py)."""
    arrived: Callable[[Any], None] = field(default=lambda _: None)
    """Told the options of a source whose value a server pushed and changed, as it arrives:
    the services that read it decide now, not at the next round."""


class Reader(Protocol):
    async def want(self, wanted: Sequence[Any]) -> None: ...

    def members(self, options: Any) -> list[Member]: ...

    async def run(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of metric source: the model of its options, and how its reader is made."""

    options: type[BaseModel]
    reader: Callable[[Needs], Reader]
