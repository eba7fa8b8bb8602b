"""Settings: one lease per set of managed projects, so that two stacks on one engine both act;
secrets read from files, as Compose and Swarm mount them."""

from __future__ import annotations

from pathlib import Path

import pytest

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
