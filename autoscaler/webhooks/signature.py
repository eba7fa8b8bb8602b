"""The signature of a webhook's body: HMAC-SHA256 with the target's shared secret, over the
timestamp and the exact bytes of the body, so that a receiver knows who sent it, that nothing
changed it, and that it is not an old request played again.

    X-Autoscaler-Timestamp: 1764790000                      (Unix seconds, when it was sent)
    X-Autoscaler-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the timestamp header, a `.` and the raw body it received
(before any JSON parsing), compares in constant time, and refuses a timestamp too far from its
own clock (five minutes by default here). A retry is signed afresh: same body, new timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE = "X-Autoscaler-Signature"
TIMESTAMP = "X-Autoscaler-Timestamp"
TOLERANCE = 300.0
"""Seconds a receiver should accept between a request's timestamp and its own clock."""


def signed_text(timestamp: str, body: bytes) -> bytes:
    """What is signed: the timestamp header's value, a dot, the body's bytes."""
    return timestamp.encode("ascii") + b"." + body


def digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signed_text(timestamp, body), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float) -> dict[str, str]:
    """The headers that sign `body` at wall time `now`."""
    timestamp = str(int(now))
    return {TIMESTAMP: timestamp, SIGNATURE: f"sha256={digest(secret, timestamp, body)}"}


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> bool:
    """Whether `headers` sign `body` with `secret`, at a time within `tolerance` of `now`: what
    a receiver checks (the tests' receiver does)."""
    found = {k.lower(): v for k, v in headers.items()}
    timestamp, signature = found.get(TIMESTAMP.lower()), found.get(SIGNATURE.lower())
    if timestamp is None or signature is None or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature, f"sha256={digest(secret, timestamp, body)}")
