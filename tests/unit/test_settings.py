"""Settings: one lease per set of managed projects, so that two stacks on one engine both act;
secrets read from files, as Compose and Swarm mount them."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, cast

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from autoscaler.backends.docker.client import client
from autoscaler.backends.docker.collector import Collector
from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import Notifier
from autoscaler.mqtt.outbox import Message, Outbox
from autoscaler.ops.api import Api
from autoscaler.ops.metrics import Metrics
from autoscaler.settings import (
    ApiSettings,
    LeaseSettings,
    MqttSettings,
    Settings,
    SwarmSettings,
    lease_name,
)
from autoscaler.sources.signals import Signals


def test_the_lease_is_named_after_the_projects_an_instance_manages() -> None:
    assert lease_name(frozenset()) == "autoscaler-lease"
    assert lease_name(frozenset({"shop"})) == "autoscaler-lease-shop"
    several = lease_name(frozenset({"shop", "blog"}))
    assert several == lease_name(frozenset({"blog", "shop"}))
    assert several.startswith("autoscaler-lease-") and several != lease_name(frozenset({"shop"}))


def test_a_lease_name_given_is_kept_for_the_engine_and_derived_for_the_cluster() -> None:
    settings = Settings(projects=frozenset({"shop"}), lease=LeaseSettings(name="mine"))
    assert (settings.engine_lease, settings.cluster_lease) == ("mine", "autoscaler-lease-shop")


def test_the_broker_password_and_the_api_token_are_read_from_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "password").write_text("broker-secret\n")
    (tmp_path / "token").write_text("api-secret")
    monkeypatch.setenv("AUTOSCALER_MQTT__PASSWORD", "ignored")
    monkeypatch.setenv("AUTOSCALER_MQTT__PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("AUTOSCALER_API__TOKEN_FILE", str(tmp_path / "token"))
    settings = Settings()
    assert settings.mqtt.password is not None and settings.api.token is not None
    assert settings.mqtt.password.get_secret_value() == "broker-secret"
    assert settings.api.token.get_secret_value() == "api-secret"


@pytest.mark.parametrize("content", [None, ""])
def test_a_secret_file_missing_or_empty_is_an_error_that_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "token").write_text(content)
    monkeypatch.setenv("AUTOSCALER_API__TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ValueError, match="AUTOSCALER_API__TOKEN_FILE"):
        Settings()


def test_the_api_version_is_pinned_as_the_docker_cli_pins_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AUTOSCALER_DOCKER_API_VERSION", raising=False)
    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    assert Settings().docker_api_version is None  # the engine's own
    monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
    assert Settings().docker_api_version == "1.41"
    monkeypatch.setenv("AUTOSCALER_DOCKER_API_VERSION", "1.45")
    assert Settings().docker_api_version == "1.45"


@given(st.text(max_size=8))
def test_an_api_version_is_major_dot_minor_or_refused_naming_the_setting(text: str) -> None:
    try:
        settings = Settings(docker_api_version=text)
    except ValidationError as exc:
        assert "docker_api_version" in str(exc)
    else:
        assert re.fullmatch(r"1\.\d{1,3}", settings.docker_api_version or "")
        assert client(None, api_version=settings.docker_api_version).api_version == f"v{text}"


def _edges(info: FieldInfo) -> st.SearchStrategy[Any] | None:
    """A numeric setting's values at its declared bounds (`ge`, just above `gt`, `le`, just
    below `lt`), or anywhere between them; None for a setting that is no number."""
    kind = info.annotation
    if kind not in (int, float):
        return None
    low: Any = None
    high: Any = None
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = bound.ge
        elif isinstance(bound, annotated_types.Gt):
            low = bound.gt + 1 if kind is int else math.nextafter(bound.gt, math.inf)
        elif isinstance(bound, annotated_types.Le):
            high = bound.le
        elif isinstance(bound, annotated_types.Lt):
            high = bound.lt - 1 if kind is int else math.nextafter(bound.lt, -math.inf)
    between: st.SearchStrategy[Any] = (
        st.integers(low, high)
        if kind is int
        else st.floats(low, high, allow_nan=False, allow_infinity=False)
    )
    edges = [b for b in (low, high) if b is not None]
    return st.one_of(st.sampled_from(edges), between) if edges else between


def _at_edges(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Every numeric setting of the model, and of the sections nested in it, at its edges."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            fields[name] = _at_edges(info.annotation).map(info.annotation.model_validate)
        elif (edges := _edges(info)) is not None:
            fields[name] = edges
    return st.fixed_dictionaries(fields)


def test_every_bounded_setting_is_drawn_at_its_edges() -> None:
    """The strategy below finds the bounds where they are declared: a new bounded setting is
    drawn at its edges with no change here."""
    sections = {"": Settings, "mqtt": MqttSettings, "api": ApiSettings,
                "lease": LeaseSettings, "swarm": SwarmSettings}  # fmt: skip
    bounded = {
        f"{section}.{name}"
        for section, model in sections.items()
        for name, info in model.model_fields.items()
        if _edges(info) is not None and info.metadata
    }
    assert {".interval", ".max_payload", ".clone_concurrency", "mqtt.outbox_size",
            "mqtt.heartbeat", "mqtt.keepalive", "mqtt.port", "api.port", "api.streams",
            "lease.ttl", "swarm.lease_ttl"} <= bounded  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(_at_edges(Settings))
def test_settings_at_their_edges_build_everything_that_uses_them(values: dict[str, Any]) -> None:
    made = Settings(_env_file=None, **values)
    notifier = Notifier(made.mqtt, instance="edge")
    for n in range(3):
        notifier.event(ServiceKey("shop", "web"), "scale_up", {"to": n}, instance="edge")
    assert 0 < notifier.pending <= made.mqtt.outbox_size + 1  # and the retained status
    # An outbox at its bound keeps the event being published, whatever comes after it.
    outbox = Outbox(made.mqtt.outbox_size)
    first = Message("autoscaler/shop/web/events", b"{}", retain=False)
    outbox.append(first)
    assert outbox.first() == first
    for n in range(3):
        outbox.append(Message("autoscaler/shop/web/events", str(n).encode(), retain=False))
    assert outbox.first() == first
    assert len(outbox) <= max(made.mqtt.outbox_size, 2)
    outbox.delivered()
    signals = Signals(made.mqtt, interval=made.interval, max_payload=made.max_payload,
                      max_scrape=made.max_scrape)  # fmt: skip
    assert set(signals.readers) == set(signals.options)
    collector = Collector(cast(Any, None), use_cgroups=False, interval=made.interval)
    assert math.isfinite(collector.min_window) and collector.min_window > 0
    api = Api(made.api.host, made.api.port, metrics=Metrics(), unready=lambda: None,
              status=dict, snapshot=cast(Any, None), history=lambda _: None,
              journal=notifier.journal, band=made.mqtt.state_band,
              streams=made.api.streams)  # fmt: skip
    assert api.port == made.api.port
