"""Records: the values a round makes by the thousand (each container's counters and sample, a
quiet service's reading, a round's facts for the pipeline), frozen to the type checker as a
frozen dataclass is, and as cheap to make as a plain one.

A frozen dataclass sets each of its fields through `object.__setattr__`: at eight fields, about
1.6 µs a record against 0.3 for a plain one (CPython 3.11). At 1,000 containers and 500 services
a round makes some 4,000 of them. The type checker still refuses any assignment to a field
(`dataclass_transform`'s frozen_default), and they hash by their fields as frozen ones do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """A slotted dataclass that only the type checker holds frozen."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
