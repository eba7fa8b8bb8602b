"""Settings: one lease per set of managed projects, so that two stacks on one engine both act;
secrets read from files, as Compose and Swarm mount them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from autoscaler.backends.docker.client import client
from autoscaler.settings import LeaseSettings, Settings, lease_name


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
