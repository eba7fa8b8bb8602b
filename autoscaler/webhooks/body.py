"""What a webhook POSTs for an event: the event itself as JSON, or a CloudEvents 1.0 event in
structured mode (the whole CloudEvent in the body, `application/cloudevents+json`) or binary mode
(its attributes in `ce-*` headers, the event in the body), made by the CloudEvents SDK.

The event is the notifier's engine-shaped one, byte for byte as the outbox keeps it, so a resend
is the same body. As a CloudEvent:

    id       the event's `id` (`<instance>:<n>`): a resend carries the same one
    source   `compose-autoscaler`
    type     `compose-autoscaler.<Type>.<Action>` (`compose-autoscaler.service.scale_up`)
    subject  the actor: `project/service`, or the part of the process that failed
    time     the event's `timeNano`
    data     the engine-shaped event, `application/json`
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

Format = Literal["json", "cloudevents-structured", "cloudevents-binary"]

SOURCE = "compose-autoscaler"
EVENT_ID = "X-Autoscaler-Event-Id"
"""The event's id as a header of every format: a receiver can drop a duplicate unparsed."""


@dataclass(frozen=True, slots=True)
class Request:
    """A POST's headers and the exact bytes of its body (what the signature covers)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def event_id(event: Mapping[str, Any], payload: bytes) -> str:
    """The event's id; for an event without one (none is made so), a digest of its bytes, the
    same at every resend."""
    given = event.get("id")
    return given if isinstance(given, str) and given else hashlib.sha256(payload).hexdigest()[:32]


def request(form: Format, payload: bytes) -> Request:
    """The POST for the event whose JSON is `payload`."""
    event = json.loads(payload)
    ident = event_id(event, payload)
    if form == "json":
        return Request(payload, {"Content-Type": "application/json", EVENT_ID: ident})
    cloud = cloud_event(event, ident)
    structured = form == "cloudevents-structured"
    message = to_structured_event(cloud) if structured else to_binary_event(cloud)
    return Request(message.body, {**message.headers, EVENT_ID: ident})


def cloud_event(event: Mapping[str, Any], ident: str) -> CloudEvent:
    nanos = event.get("timeNano")
    when = datetime.fromtimestamp(nanos / 1e9, UTC) if isinstance(nanos, int) else None
    attributes: dict[str, Any] = {
        "id": ident,
        "source": SOURCE,
        "type": f"{SOURCE}.{event.get('Type', 'unknown')}.{event.get('Action', 'unknown')}",
        "datacontenttype": "application/json",
    }
    actor = event.get("Actor", {}).get("ID")
    if isinstance(actor, str) and actor:
        attributes["subject"] = actor
    if when is not None:
        attributes["time"] = when
    return CloudEvent(attributes, dict(event))
