"""One webhook target as the senders use it: its name (the log's and its outbox file's), its
address as the log may show it (an Apprise URL holds its service's token, a URL its password),
and which events it wants.

A filter by service is a glob (`fnmatch`, case-sensitive) on `project/service`, or on the
service's name alone when the glob has no `/` (as an operator's command names a service). With a
services filter set, only services' events pass: the process's own faults name no service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from yarl import URL

from autoscaler.settings import WebhookSettings


def service_matches(glob: str, project: str, service: str) -> bool:
    """Whether `glob` names the service `service` of project `project`."""
    if "/" in glob:
        return fnmatchcase(f"{project}/{service}", glob)
    return fnmatchcase(service, glob)


@dataclass(frozen=True, slots=True)
class Target:
    settings: WebhookSettings
    name: str
    """`settings.name`, or a digest of the address: the same target keeps its outbox file
    across restarts, and two targets never share one."""

    @classmethod
    def of(cls, settings: WebhookSettings) -> Target:
        if settings.name is not None:
            return cls(settings, settings.name)
        digest = hashlib.sha256(_address(settings).encode()).hexdigest()[:12]
        return cls(settings, digest)

    @property
    def shown(self) -> str:
        """The address for the log: no password, no query (tokens live there), no chat token."""
        if self.settings.url is None:
            scheme = _address(self.settings).partition("://")[0]
            return f"{scheme}://… (apprise)"
        url = URL(str(self.settings.url))
        return str(url.with_user(None).with_query(None).with_fragment(None))

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Whether this target is told `event` (an engine-shaped event of the notifier)."""
        wanted = self.settings
        if wanted.events and event.get("Action") not in wanted.events:
            return False
        if not wanted.services:
            return True
        attributes = event.get("Actor", {}).get("Attributes", {})
        project, service = attributes.get("project"), attributes.get("service")
        if not isinstance(project, str) or not isinstance(service, str):
            return False
        return any(service_matches(glob, project, service) for glob in wanted.services)


def _address(settings: WebhookSettings) -> str:
    if settings.apprise is not None:
        return settings.apprise.get_secret_value()
    return str(settings.url)
