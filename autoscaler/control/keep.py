"""What a policy learns over days (the predictive policy's daily history), kept across restarts
in a small JSON file a service under `AUTOSCALER_STATE_DIR`: written atomically (a temporary
file renamed over the old one), read once when the service's policy is made. Without the
setting nothing is kept, and the daily floor waits for a whole day again after a restart.

A file that cannot be read or written is a warning naming the file, told once, and never stops
the service: the policy then learns afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)


class Keep:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._warned: set[str] = set()

    def path(self, key: ServiceKey) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(key))
        return self._directory / f"{name}.json"

    def load(self, key: ServiceKey) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(path, f"cannot be read ({exc})")
            return None
        try:
            saved = json.loads(text)
        except ValueError as exc:
            self._warn(path, f"is no JSON ({exc}): learning afresh")
            return None
        return saved if isinstance(saved, dict) else None

    def save(self, key: ServiceKey, data: dict[str, Any]) -> None:
        path = self.path(key)
        temporary = path.with_suffix(".tmp")
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data, separators=(",", ":")))
            os.replace(temporary, path)
        except OSError as exc:
            self._warn(path, f"cannot be written ({exc})")
            with contextlib.suppress(OSError):
                temporary.unlink()
        else:
            self._warned.discard(str(path))

    def _warn(self, path: Path, what: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            logger.warning("%s %s; what the policy learned is not kept", path, what)


SAVE_EVERY = 300.0
"""Seconds between saves of a service's learning: a daily history's bucket."""


class Memory:
    """One service's policy's learning: restored when its policy is made, saved every
    SAVE_EVERY seconds, at shutdown and when new labels bring a new policy. Only a policy with
    `export` and `restore` learns anything to keep."""

    def __init__(self, keep: Keep | None, key: ServiceKey) -> None:
        self._keep, self._key = keep, key
        self._saved: float | None = None  # monotonic

    def restore(self, policy: object) -> None:
        restore = getattr(policy, "restore", None)
        if self._keep is None or restore is None:
            return
        saved = self._keep.load(self._key)
        if saved is not None:
            restore(saved)
            logger.info("%s: what its policy learned is read back from %s", self._key,
                        self._keep.path(self._key))  # fmt: skip

    def save(self, policy: object) -> None:
        """Save now, whatever the time since the last: at shutdown and before a new policy
        replaces this one, so that a restart loses none of what was learned."""
        export = getattr(policy, "export", None)
        if self._keep is not None and export is not None and self._saved is not None:
            self._keep.save(self._key, export())

    def tick(self, policy: object, now: float) -> None:
        if self._saved is None:
            self._saved = now  # a first save once there is something to keep
        elif now - self._saved >= SAVE_EVERY:
            self._saved = now
            self.save(policy)
