"""`AUTOSCALER_WEBHOOKS`: a JSON list of targets, each an HTTP endpoint or an Apprise URL; a
bad one stops the start with an error that names the setting and what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from autoscaler.settings import Settings, WebhookSettings


def hook(**values: Any) -> WebhookSettings:
    """A target's settings, as the environment's JSON gives them (strings for URLs, secrets)."""
    return WebhookSettings.model_validate(values)


def from_env(monkeypatch: pytest.MonkeyPatch, targets: Any) -> Settings:
    monkeypatch.setenv("AUTOSCALER_WEBHOOKS", json.dumps(targets))
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_targets_are_read_from_a_json_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = from_env(monkeypatch, [
        {"url": "https://hooks.example/in", "format": "cloudevents-binary",
         "services": ["shop/*"], "events": ["scale_up"], "timeout": 2},
        {"apprise": "ntfy://ntfy.sh/ops", "name": "ops-chat"},
    ])  # fmt: skip
    first, second = settings.webhooks
    assert str(first.url) == "https://hooks.example/in"
    assert (first.format, first.services, first.events, first.timeout) == (
        "cloudevents-binary", ("shop/*",), ("scale_up",), 2.0,
    )  # fmt: skip
    assert second.apprise is not None and second.apprise.get_secret_value() == "ntfy://ntfy.sh/ops"
    assert "ntfy.sh/ops" not in repr(second)  # a chat URL holds its token: never shown


def test_no_targets_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOSCALER_WEBHOOKS", raising=False)
    assert Settings(_env_file=None).webhooks == []  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ({}, "either `url` or `apprise`"),
        ({"url": "http://a.example/", "apprise": "ntfy://x"}, "either `url` or `apprise`"),
        ({"url": "ftp://a.example/"}, "URL scheme should be 'http' or 'https'"),
        ({"url": "http://a.example/", "format": "xml"}, "'json', 'cloudevents-structured' or 'cloudevents-binary'"),
        ({"url": "http://a.example/", "events": ["Scale Up"]}, "AUTOSCALER_WEBHOOKS events: 'Scale Up'"),
        ({"url": "http://a.example/", "services": [" shop/*"]}, "AUTOSCALER_WEBHOOKS services"),
        ({"url": "http://a.example/", "timeout": 0}, "greater than 0"),
        ({"url": "http://a.example/", "name": "../etc"}, "should match pattern"),
        ({"url": "http://a.example/", "retries": 3}, "Extra inputs are not permitted"),
    ],
    ids=["neither", "both", "not http", "format", "event name", "service glob", "timeout",
         "name", "unknown field"],
)  # fmt: skip
def test_a_bad_target_is_refused_naming_the_setting_and_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, target: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        from_env(monkeypatch, [target])
    assert "webhooks.0" in str(caught.value)
    assert words in str(caught.value)


def test_the_secret_is_read_from_its_file_which_wins(tmp_path: Path) -> None:
    (tmp_path / "hook").write_text("s3cret\n")
    target = hook(url="http://a.example/", secret="other", secret_file=tmp_path / "hook")
    assert target.secret is not None and target.secret.get_secret_value() == "s3cret"


def test_a_secret_file_that_cannot_be_read_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="AUTOSCALER_WEBHOOKS secret_file: cannot read"):
        hook(url="http://a.example/", secret_file=tmp_path / "missing")


globs = st.from_regex(r"[a-z0-9*?]{1,8}(/[a-z0-9*?]{1,8})?", fullmatch=True)
actions = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
formats = st.sampled_from(["json", "cloudevents-structured", "cloudevents-binary"])


@given(
    st.lists(
        st.fixed_dictionaries({
            "url": st.just("http://127.0.0.1:8080/hook"), "format": formats,
            "services": st.lists(globs, max_size=3), "events": st.lists(actions, max_size=3),
            "timeout": st.floats(0.01, 300),
        }),
        max_size=4,
    )
)  # fmt: skip
def test_any_list_of_good_targets_reads_back_as_written(targets: list[dict[str, Any]]) -> None:
    with pytest.MonkeyPatch.context() as env:
        settings = from_env(env, targets)
    assert [t.model_dump(mode="json", include=set(targets[0]) if targets else None)
            for t in settings.webhooks] == [
        {**t, "services": list(t["services"]), "events": list(t["events"])} for t in targets
    ]  # fmt: skip


@given(st.text(max_size=30).filter(lambda s: not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", s)))
def test_any_event_name_that_is_no_action_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="AUTOSCALER_WEBHOOKS events"):
        hook(url="http://a.example/", events=(name,))
