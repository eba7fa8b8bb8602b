"""Events waiting for the broker, in order: bounded, and optionally kept on disk so that a
restart loses none.

The file is a journal of JSON lines, appended as events are queued and emptied once all of them
have been delivered; on start-up whatever it holds is queued again, first. Delivery is at least
once: an event acknowledged just before a crash is sent again after it. Past `size` events the
oldest are dropped, counted and logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from autoscaler.errors import BrokerError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    def __init__(self, size: int, path: Path | None = None) -> None:
        self._size = size
        self._events: deque[Message] = deque()
        self.dropped = 0
        self._path = path
        self._journal: IO[str] | None = None
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                for number, line in enumerate(path.read_text().splitlines(), start=1):
                    try:
                        record = json.loads(line)
                        message = Message(record["topic"], record["payload"].encode(), False)
                    except (ValueError, KeyError, AttributeError):
                        logger.warning("outbox %s line %d is not an event; skipped", path, number)
                        continue
                    self._push(message)
                if self._events:
                    logger.info("outbox %s: %d undelivered events from before", path, len(self))
            self._journal = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise BrokerError(f"cannot use MQTT outbox file {path}: {exc}") from exc

    def __len__(self) -> int:
        return len(self._events)

    def append(self, message: Message) -> None:
        self._push(message)
        if self._journal is not None:
            record = {"topic": message.topic, "payload": message.payload.decode()}
            try:
                self._journal.write(json.dumps(record) + "\n")
                self._journal.flush()
            except OSError as exc:
                # Delivery goes on from memory; only a restart could lose these.
                logger.warning("cannot write the MQTT outbox file %s: %s", self._path, exc)

    def _push(self, message: Message) -> None:
        if len(self._events) >= self._size:
            self._events.popleft()
            self.dropped += 1
            logger.warning(
                "MQTT outbox full (%d events): dropped the oldest; %d dropped so far",
                self._size,
                self.dropped,
            )
        self._events.append(message)

    def first(self) -> Message | None:
        return self._events[0] if self._events else None

    def delivered(self) -> None:
        """The first event was acknowledged by the broker."""
        self._events.popleft()
        if not self._events and self._journal is not None:
            # Everything written so far is delivered: start the journal over.
            self._journal.flush()
            os.ftruncate(self._journal.fileno(), 0)
            self._journal.seek(0)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
