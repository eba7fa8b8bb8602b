"""The bodies: the event itself as JSON, or a CloudEvents 1.0 event (structured or binary mode)
that any CloudEvents reader parses back to the same id, type, subject, time and data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import engine_event
from autoscaler.webhooks.body import EVENT_ID, Format, event_id, request

EVENT = engine_event("scale_up", ServiceKey("shop", "web"), {"policy": "hpa"},
                     ident="host-1-ab:7", **{"from": 1, "to": 3, "reason": "cpu 80"})  # fmt: skip
PAYLOAD = json.dumps(EVENT, sort_keys=True).encode()


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive: the SDK writes `content-type`."""
    return {k.lower(): v for k, v in headers.items()}


def test_a_plain_json_body_is_the_event_byte_for_byte_as_mqtt_carries_it() -> None:
    post = request("json", PAYLOAD)
    assert post.body == PAYLOAD
    assert post.headers == {"Content-Type": "application/json", EVENT_ID: "host-1-ab:7"}


def test_a_structured_cloudevent_holds_the_event_as_data_with_its_id_type_and_time() -> None:
    post = request("cloudevents-structured", PAYLOAD)
    assert lower(post.headers)["content-type"].startswith("application/cloudevents+json")
    body = json.loads(post.body)
    assert body["specversion"] == "1.0"
    assert body["id"] == "host-1-ab:7"
    assert body["source"] == "compose-autoscaler"
    assert body["type"] == "compose-autoscaler.service.scale_up"
    assert body["subject"] == "shop/web"
    assert body["datacontenttype"] == "application/json"
    assert body["data"] == EVENT
    parsed = from_http_event(HTTPMessage(dict(post.headers), post.body))
    assert parsed.get_time() == datetime.fromtimestamp(EVENT["timeNano"] / 1e9, UTC)


def test_a_binary_cloudevent_puts_its_attributes_in_ce_headers_and_the_event_in_the_body() -> None:
    post = request("cloudevents-binary", PAYLOAD)
    assert post.headers["ce-id"] == "host-1-ab:7"
    assert post.headers["ce-specversion"] == "1.0"
    assert post.headers["ce-type"] == "compose-autoscaler.service.scale_up"
    assert post.headers["ce-subject"] == "shop/web"
    assert lower(post.headers)["content-type"] == "application/json"
    assert json.loads(post.body) == EVENT
    parsed = from_http_event(HTTPMessage(dict(post.headers), post.body))
    assert (parsed.get_id(), parsed.get_source(), parsed.get_data()) == (
        "host-1-ab:7", "compose-autoscaler", EVENT,
    )  # fmt: skip


def test_every_resend_of_an_event_is_the_same_body() -> None:
    forms: tuple[Format, ...] = ("json", "cloudevents-structured", "cloudevents-binary")
    for form in forms:
        assert request(form, PAYLOAD) == request(form, PAYLOAD)


def test_an_event_without_an_id_gets_one_from_its_bytes_the_same_each_time() -> None:
    bare = json.dumps({"Type": "service", "Action": "sleep"}).encode()
    assert event_id(json.loads(bare), bare) == event_id(json.loads(bare), bare)
    assert len(event_id(json.loads(bare), bare)) == 32
