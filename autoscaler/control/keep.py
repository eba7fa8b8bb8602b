"""What a policy learns over days (the predictive policy's daily history), kept across restarts
in a small JSON file a service under `AUTOSCALER_STATE_DIR`: written atomically (a temporary
file renamed over the old one), read once when the service's policy is made. Without the
setting nothing is kept, and the daily floor waits for a whole day again after a restart.

A file that cannot be read or written is a warning naming the file, told once, and never stops
the service: the policy then learns afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)


class Keep:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._warned: set[str] = set()

    def path(self, key: ServiceKey) -> Path:
        """The service's file: its name made safe for a file name (readable), and a digest of
        the name as it is (unique: `a/b` and `a_b` read alike, and are two services)."""
        digest = hashlib.sha256(str(key).encode(errors="surrogatepass")).hexdigest()[:12]
        return self._directory / f"{_readable(str(key))[:100]}-{digest}.json"

    def _legacy(self, key: ServiceKey) -> Path:
        """Where releases before the digest kept it: read when the file is not there yet."""
        return self._directory / f"{_readable(str(key))}.json"

    def load(self, key: ServiceKey) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            try:
                text = path.read_text()
            except FileNotFoundError:
                path = self._legacy(key)
                text = path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._warn(path, f"cannot be read ({exc})")
            return None
        try:
            saved = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._warn(path, f"is no JSON ({exc}): learning afresh")
            return None
        if not isinstance(saved, dict):
            self._warn(path, "holds no JSON object: learning afresh")
            return None
        return saved

    def save(self, key: ServiceKey, data: dict[str, Any]) -> None:
        """Written whole or not at all, and on the disk before it replaces the old one: a
        temporary file of this write's own (another instance writing the same file has its
        own), synced, renamed over the old one, and the directory synced (the rename)."""
        path = self.path(key)
        temporary: Path | None = None
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=self._directory)
            temporary = Path(name)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(data, separators=(",", ":")))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            temporary = None
            _sync_directory(self._directory)
        except OSError as exc:
            self._warn(path, f"cannot be written ({exc})")
        else:
            self._warned.discard(str(path))
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink()

    def warn(self, key: ServiceKey, what: str) -> None:
        """What was read back from the service's file cannot be used: told once."""
        self._warn(self.path(key), what)

    def _warn(self, path: Path, what: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            logger.warning("%s %s; what the policy learned is not kept", path, what)


def _readable(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _sync_directory(directory: Path) -> None:
    """The directory's entries on the disk: a rename is not until then."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
        if saved is None:
            return
        try:
            restore(saved)
        except (TypeError, ValueError) as exc:
            # Another release's, or a damaged one: the policy learns afresh, and says so.
            self._keep.warn(self._key, f"holds nothing this policy can read ({exc}): "
                                       "learning afresh")  # fmt: skip
            return
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
