"""One target's delivery: its own outbox (the same bounded, journalled queue the MQTT notifier
keeps, in its own file) and a loop that sends the oldest event until the target takes it.

    idle ──(an event queued)──► sending the oldest ──2xx──► removed; the next, at once
      ▲                          │    │
      │                          │    └─4xx but 408/429──► dropped: logged as an error, counted
      │                          └─5xx, 408, 429, timeout, refused──► waiting (backoff) ──┐
      └──────────── (queue empty) ◄──────────────────── sending the same one again ◄──────┘
    closing: what is queued is sent while the target takes it; the first failure ends the
    loop, and what is left stays in the outbox file for the next start.

Order: an event is sent only once every older one left the queue, so a target sees them in the
order they happened. At least once: an event leaves the queue only once the target answered it,
so a crash between the target's answer and that resends it, with the same body and id (a retry
is signed afresh: same body, new timestamp). A 4xx says the request itself is wrong (a bad URL,
a secret the receiver does not share): sent again it would fail again and hold back every later
event, so it is dropped, said and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp

from autoscaler.errors import BrokerError, Reconnect
from autoscaler.mqtt.outbox import Message, Outbox
from autoscaler.webhooks.body import event_id, request
from autoscaler.webhooks.chat import Chat
from autoscaler.webhooks.errors import WebhookError
from autoscaler.webhooks.signature import sign
from autoscaler.webhooks.target import Target

logger = logging.getLogger(__name__)

# Retries wait half a second, doubling up to the target's `retry_cap`, each between half and all
# of that (jitter, so that instances cut off together do not knock together).
_BACKOFF_START = 0.5
# While a target keeps failing, say so once, then again at most this often.
_REMIND = 60.0
_USER_AGENT = "compose-autoscaler"


class Outcome(Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    """The target refused it for good (a 4xx but 408 and 429): dropped."""
    RETRY = "retry"


def outcome(status: int) -> Outcome:
    """What an HTTP answer means for the event it answers."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if 400 <= status < 500 and status not in (408, 429):
        return Outcome.REJECTED
    return Outcome.RETRY


class Sender:
    def __init__(
        self, target: Target, path: Path | None, *, wall: Callable[[], float] = time.time
    ) -> None:
        """`path`: the outbox file (memory only when None); `wall`: the clock of the signature's
        timestamp."""
        self.target = target
        self.name = target.name
        self._wall = wall
        settings = target.settings
        self._chat = (
            Chat(settings.apprise.get_secret_value(), target.name)
            if settings.apprise is not None
            else None
        )
        self._secret = settings.secret.get_secret_value() if settings.secret else None
        try:
            self._outbox = Outbox(settings.outbox_size, path)
        except BrokerError as exc:
            raise WebhookError(f"webhook {target.name}: {exc}") from exc
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self.delivered = 0
        self.rejected = 0
        """Events the target refused for good (a 4xx), dropped, each logged as an error."""
        self.failures = 0
        """Attempts that failed and were retried (5xx, 408, 429, timeouts, refusals)."""
        self.failing: str | None = None
        """Why the last attempt failed, while the target keeps failing."""

    def offer(self, event: Mapping[str, Any]) -> None:
        """Queue `event` when the target wants it; never waits."""
        if not self.target.wants(event):
            return
        payload = json.dumps(event, sort_keys=True).encode()
        self._outbox.append(Message(event_id(event, payload), payload, False))
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._outbox)

    @property
    def dropped(self) -> int:
        """Events dropped because the outbox was full."""
        return self._outbox.dropped

    def status(self) -> dict[str, Any]:
        return {"target": self.target.shown, "pending": self.pending, "failing": self.failing,
                "delivered": self.delivered, "rejected": self.rejected,
                "failures": self.failures, "dropped": self.dropped}  # fmt: skip

    def close(self) -> None:
        """Ask `run` to send what is queued while the target takes it, then return."""
        self._closed.set()
        self._wake.set()

    async def run(self) -> None:
        """Deliver the outbox in order until `close()`; retry each failure with backoff."""
        try:
            timeout = aiohttp.ClientTimeout(total=self.target.settings.timeout)
            headers = {"User-Agent": _USER_AGENT}
            async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
                await self._run(session)
        finally:
            self._outbox.close()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        cap = self.target.settings.retry_cap
        retry, told = Reconnect(min(_BACKOFF_START, cap), cap), float("-inf")
        while True:
            self._wake.clear()
            message = self._outbox.first()
            if message is None:
                if self._closed.is_set():
                    return
                await self._wake.wait()
                continue
            result, why = await self._attempt(session, message)
            if result is Outcome.RETRY:
                self.failures += 1
                if self.failing is None or time.monotonic() - told >= _REMIND:
                    told = time.monotonic()
                    logger.warning("webhook %s (%s) failed: %s; %d events waiting; retrying",
                                   self.name, self.target.shown, why, self.pending)  # fmt: skip
                else:
                    logger.debug("webhook %s still failing: %s", self.name, why)
                self.failing = why
                if self._closed.is_set():
                    logger.warning("shutting down with %d webhook events for %s undelivered",
                                   self.pending, self.name)  # fmt: skip
                    return
                # Sleep out the backoff, but go at once for a last try when asked to close.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry.next()):
                        await self._closed.wait()
                continue
            if self.failing is not None:
                logger.info("webhook %s delivers again", self.name)
                self.failing = None
            retry.reset()
            if result is Outcome.REJECTED:
                self.rejected += 1
                logger.error("webhook %s (%s) refused event %s for good: %s; dropped "
                             "(%d so far)", self.name, self.target.shown, message.topic, why,
                             self.rejected)  # fmt: skip
            else:
                self.delivered += 1
            self._outbox.delivered()

    async def _attempt(
        self, session: aiohttp.ClientSession, message: Message
    ) -> tuple[Outcome, str]:
        """One try at the oldest event: what came of it, and what the target said."""
        settings = self.target.settings
        if self._chat is not None:
            try:
                async with asyncio.timeout(settings.timeout):
                    taken = await self._chat.send(json.loads(message.payload))
            except TimeoutError:
                return Outcome.RETRY, f"no answer within {settings.timeout:g} s"
            return (Outcome.DELIVERED, "") if taken else (Outcome.RETRY, "Apprise could not send")
        post = request(settings.format, message.payload)
        headers = dict(post.headers)
        if self._secret is not None:
            headers |= sign(self._secret, post.body, now=self._wall())
        try:
            async with session.post(str(settings.url), data=post.body, headers=headers) as answer:
                await answer.read()
                return outcome(answer.status), f"HTTP {answer.status} {answer.reason or ''}"
        except TimeoutError:
            return Outcome.RETRY, f"no answer within {settings.timeout:g} s"
        except aiohttp.ClientError as exc:
            return Outcome.RETRY, f"{type(exc).__name__}: {exc}"
