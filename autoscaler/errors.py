"""The one error root. Library errors are wrapped at the boundary with `raise ... from exc`."""

from __future__ import annotations


class AutoscalerError(Exception):
    """Root of every error this service raises on purpose."""

    service: str | None = None

    def event_attributes(self) -> dict[str, str]:
        """What an MQTT error event carries about this error, besides its message."""
        return {"error": type(self).__name__}


class LabelError(AutoscalerError):
    """A service's `autoscaler.*` labels are wrong; the service is skipped until they are fixed."""

    def __init__(self, service: str, label: str, value: str | None, reason: str) -> None:
        shown = f"{label}={value!r}" if value is not None else label
        super().__init__(f"service {service}: label {shown}: {reason}")
        self.service = service
        self.label = label
        self.value = value
        self.reason = reason

    def event_attributes(self) -> dict[str, str]:
        attrs = super().event_attributes() | {"label": self.label}
        if self.value is not None:
            attrs["value"] = self.value
        return attrs


class TemplateError(AutoscalerError):
    """A service has no container to clone, or its template cannot be cloned."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"service {service}: {reason}")
        self.service = service


class EngineError(AutoscalerError):
    """The Docker Engine is unreachable or refused a request."""

    def __init__(self, message: str, *, service: str | None = None, status: int | None = None):
        super().__init__(f"service {service}: {message}" if service else message)
        self.service = service
        self.status = status


class BrokerError(AutoscalerError):
    """The MQTT broker is unreachable or refused us."""


class InternalError(AutoscalerError):
    """A bug met while acting for a service: reported like any other error, never fatal."""

    def __init__(self, service: str, doing: str, exc: BaseException) -> None:
        super().__init__(f"service {service}: unexpected {type(exc).__name__} while {doing}: {exc}")
        self.service = service


class MetricError(AutoscalerError):
    """A service's metric source gives no value to trust: unreachable, stale or malformed."""

    def __init__(self, service: str, source: str, reason: str) -> None:
        super().__init__(f"service {service}: metric {source}: {reason}; holding")
        self.service = service
        self.source = source

    def event_attributes(self) -> dict[str, str]:
        return super().event_attributes() | {"source": self.source}
