"""Which events a target is told: services by glob (`project/service`, or the service's name
alone), event Actions by name; with a services filter, only services' events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import engine_event
from autoscaler.settings import WebhookSettings
from autoscaler.webhooks.target import Target, service_matches

URL = "http://127.0.0.1:9/hook"


def hook(**values: Any) -> WebhookSettings:
    """A target's settings, as the environment's JSON gives them (strings for URLs, secrets)."""
    return WebhookSettings.model_validate(values)


def target(**values: Any) -> Target:
    return Target.of(hook(url=URL, **values))


def service_event(project: str, service: str, action: str = "scale_up") -> dict[str, Any]:
    return engine_event(action, ServiceKey(project, service), {}, ident="i:1")


FAULT = {"id": "i:2", "Type": "autoscaler", "Action": "error",
         "Actor": {"ID": "collector", "Attributes": {"part": "collector"}}}  # fmt: skip


@pytest.mark.parametrize(
    ("services", "events", "event", "told"),
    [
        ((), (), service_event("shop", "web"), True),
        ((), (), FAULT, True),
        (("shop/*",), (), service_event("shop", "web"), True),
        (("shop/*",), (), service_event("blog", "web"), False),
        (("shop/*",), (), FAULT, False),
        (("web",), (), service_event("blog", "web"), True),
        (("web",), (), service_event("blog", "worker"), False),
        (("*/w?b",), (), service_event("blog", "web"), True),
        (("Shop/*",), (), service_event("shop", "web"), False),
        ((), ("scale_up", "scale_down"), service_event("shop", "web", "scale_down"), True),
        ((), ("scale_up",), service_event("shop", "web", "error"), False),
        ((), ("error",), FAULT, True),
        (("shop/*",), ("error",), service_event("shop", "web", "error"), True),
        (("shop/*",), ("error",), service_event("shop", "web", "scale_up"), False),
    ],
    ids=[
        "no filter: a service's event", "no filter: a fault", "project glob: in it",
        "project glob: another project", "a services filter: never a fault",
        "a name alone: in any project", "a name alone: another service", "wildcards",
        "globs are case-sensitive", "events: one of them", "events: not one of them",
        "events: a fault's error", "both: both match", "both: the event does not",
    ],
)  # fmt: skip
def test_a_target_is_told_the_events_its_filters_let_through(
    services: tuple[str, ...], events: tuple[str, ...], event: dict[str, Any], told: bool
) -> None:
    assert target(services=services, events=events).wants(event) is told


names = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=20)


@given(project=names, service=names)
def test_a_glob_without_wildcards_names_exactly_its_own_service(project: str, service: str) -> None:
    assert service_matches(f"{project}/{service}", project, service)
    assert service_matches(service, project, service)
    assert service_matches(f"{project}/*", project, service)
    assert not service_matches(f"{project}/{service}x", project, service)
    assert not service_matches(f"{project}x/{service}", project, service)


def test_a_target_s_name_is_its_own_or_a_digest_of_its_address_that_a_restart_keeps() -> None:
    assert target(name="ops").name == "ops"
    assert target().name == target().name
    assert target().name != Target.of(hook(url="http://127.0.0.1:9/other")).name
    assert len(target().name) == 12


def test_the_log_shows_no_password_nor_query_nor_chat_token() -> None:
    shown = Target.of(hook(url="https://bob:hunter2@hooks.example/in?token=abc")).shown
    assert shown == "https://hooks.example/in"
    chat = Target.of(hook(apprise="ntfy://ntfy.sh/my-secret-topic"))
    assert "my-secret-topic" not in chat.shown
    assert chat.shown.startswith("ntfy://")
