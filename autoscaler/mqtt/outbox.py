"""Events waiting for the broker, in order: bounded, and optionally kept on disk so that a
restart loses none.

Each event gets a sequence number. The file is a journal of JSON lines: `{"seq", "topic",
"payload"}` when an event is queued and `{"gone": seq}` when it left the queue (delivered or
dropped), so replaying it on start-up rebuilds exactly the queue there was; nothing is dropped,
or counted as dropped, twice. When the journal holds far more lines than the queue holds events
it is rewritten with just the queue (a new file renamed over the old one), so it stays bounded
like the queue. Delivery is at least once: the event handed out for publishing stays first
until the broker acknowledges it, and is sent again after a crash. Past `size` events the oldest
one that is not being published is dropped, counted once and logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from autoscaler.errors import BrokerError

logger = logging.getLogger(__name__)

# The journal is rewritten once it holds this many lines more than twice the queue's bound.
_SLACK = 64


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    def __init__(self, size: int, path: Path | None = None) -> None:
        self._size = size
        self._events: OrderedDict[int, Message] = OrderedDict()  # seq -> event, oldest first
        self._next = 0
        self._sending: int | None = None  # seq of the event handed out by first()
        self.dropped = 0
        self._path = path
        self._journal: IO[str] | None = None
        self._lines = 0
        self._torn = False  # a write failed: the file may miss records until rewritten
        if path is not None:
            self._load(path)

    def __len__(self) -> int:
        return len(self._events)

    def append(self, message: Message) -> None:
        if len(self._events) >= self._size:
            self._drop_oldest()
        seq, self._next = self._next, self._next + 1
        self._events[seq] = message
        self._write({"seq": seq, "topic": message.topic, "payload": message.payload.decode()})

    def first(self) -> Message | None:
        """The oldest event, to publish now; it is never dropped until `delivered()`."""
        if not self._events:
            return None
        self._sending, message = next(iter(self._events.items()))
        return message

    def delivered(self) -> None:
        """The event `first()` handed out was acknowledged by the broker."""
        if self._sending is None:
            return
        self._events.pop(self._sending, None)
        self._write({"gone": self._sending})
        self._sending = None

    def close(self) -> None:
        journal, self._journal = self._journal, None
        if journal is None:
            return
        try:
            journal.close()
        except OSError as exc:
            # What it still held could not be written (a full disk): the file is rewritten
            # whole at the next event; delivery goes on from memory.
            self._torn = True
            logger.warning("cannot write the MQTT outbox file %s: %s", self._path, exc)

    def _drop_oldest(self) -> None:
        victim = next((seq for seq in self._events if seq != self._sending), None)
        if victim is None:
            # At a bound of 1, the one event there is being published: it leaves once the
            # broker acknowledges it, and until then the queue holds one more than its bound.
            return
        del self._events[victim]
        self.dropped += 1
        self._write({"gone": victim})
        logger.warning(
            "MQTT outbox full (%d events): dropped the oldest; %d dropped so far",
            self._size,
            self.dropped,
        )

    # -- the journal ---------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = self._replay(path.read_text().splitlines()) if path.exists() else {}
        except OSError as exc:
            raise BrokerError(f"cannot use MQTT outbox file {path}: {exc}") from exc
        # Older files may hold more than this run's bound allows: keep the newest.
        for seq in sorted(kept)[-self._size :]:
            self._events[seq] = kept[seq]
        if len(kept) > self._size:
            self.dropped = len(kept) - self._size
            logger.warning("outbox %s: %d events beyond the bound dropped", path, self.dropped)
        self._next = max(kept, default=-1) + 1
        if self._events:
            logger.info("outbox %s: %d undelivered events from before", path, len(self))
        failure = self._rewrite()
        if failure is not None:
            raise BrokerError(f"cannot use MQTT outbox file {path}: {failure}") from failure

    def _replay(self, lines: list[str]) -> dict[int, Message]:
        kept: dict[int, Message] = {}
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                if "gone" in record:
                    kept.pop(int(record["gone"]), None)
                    continue
                # Journals written before sequence numbers hold events only, in order.
                seq = int(record["seq"]) if "seq" in record else max(kept, default=-1) + 1
                kept[seq] = Message(record["topic"], record["payload"].encode(), False)
            except (ValueError, KeyError, AttributeError, TypeError):
                logger.warning("outbox %s line %d is not an event; skipped", self._path, number)
        return kept

    def _write(self, record: dict[str, Any]) -> None:
        if self._path is None:
            return
        if self._torn or not self._events or self._lines >= 2 * self._size + _SLACK:
            self._rewrite()
            return
        try:
            if self._journal is None:
                self._journal = self._path.open("a", encoding="utf-8")
            self._journal.write(json.dumps(record) + "\n")
            self._journal.flush()
            self._lines += 1
        except OSError as exc:
            # Delivery goes on from memory; only a restart could lose these. The file may now
            # end in part of a record and miss this one: the next event rewrites it whole.
            self._torn = True
            self.close()
            logger.warning("cannot write the MQTT outbox file %s: %s", self._path, exc)

    def _rewrite(self) -> OSError | None:
        """Replace the journal by one that holds just the queue; the failure, if it failed."""
        assert self._path is not None
        self.close()
        fresh = self._path.with_name(self._path.name + ".new")
        try:
            with fresh.open("w", encoding="utf-8") as out:
                for seq, m in self._events.items():
                    record = {"seq": seq, "topic": m.topic, "payload": m.payload.decode()}
                    out.write(json.dumps(record) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, self._path)
        except OSError as exc:
            # Delivery goes on from memory. The old journal stays as it was, short of the
            # record that asked for this rewrite: torn, it is never appended to, and the next
            # event tries the rewrite again. A new file written in part (a full disk) is not
            # left behind.
            self._torn = True
            with contextlib.suppress(OSError):
                fresh.unlink(missing_ok=True)
            logger.warning("cannot rewrite the MQTT outbox file %s: %s", self._path, exc)
            return exc
        self._lines, self._torn = len(self._events), False
        return None
