"""What a source reads is bounded: an HTTP answer is read whole but never past its bound (a body
over it is refused before any of it is parsed, and the rest never read), and what is larger than
a few kB is parsed off the event loop (an MQTT payload too, sources/mqtt.py)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TypeVar

import aiohttp

T = TypeVar("T")

ON_LOOP = 4096
"""Bytes of a body parsed on the event loop; a larger one is parsed in a thread, so that a
round never waits behind it."""
MAX_PAYLOAD = 65_536
"""Bytes a pushed value or a query's answer may have unless the settings say otherwise
(AUTOSCALER_MAX_PAYLOAD)."""
MAX_SCRAPE = 4 << 20
"""Bytes a scraped endpoint's text may have unless the settings say otherwise
(AUTOSCALER_MAX_SCRAPE)."""


class TooLarge(ValueError):
    """A body over the source's bound."""


async def body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The response's body; TooLarge past `limit` bytes (as its Content-Length says, or as read)."""
    if response.content_length is not None and response.content_length > limit:
        raise TooLarge(f"an answer of {response.content_length} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"an answer of more than {limit} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


def finite_or_infinite(value: float) -> float:
    """A parsed number as a float: an integer too large for one (400 digits) is infinite, so
    that the rules for a value that is not finite say what is wrong with it."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


async def parsed(raw: bytes, parse: Callable[[bytes], T]) -> T:
    """`parse(raw)`, in a thread when `raw` is larger than ON_LOOP."""
    if len(raw) > ON_LOOP:
        return await asyncio.to_thread(parse, raw)
    return parse(raw)
