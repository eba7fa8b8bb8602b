"""A secret a queue source names: the file of that name in the secrets folder (Compose's
`secrets:`), else the setting AUTOSCALER_SECRETS__<NAME>; the file wins, and a name found in
neither place is an error naming the label and both places."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from autoscaler.settings import SECRETS_DIR, Settings
from autoscaler.sources.credentials import MissingSecret, password


def test_the_file_is_the_secret_without_its_last_newline(tmp_path: Path) -> None:
    (tmp_path / "redis-password").write_text("s3cret\n")
    assert password("redis-password", tmp_path).get_secret_value() == "s3cret"


def test_the_file_wins_over_the_setting(tmp_path: Path) -> None:
    (tmp_path / "redis").write_text("from-the-file")
    found = password("redis", tmp_path, {"redis": SecretStr("from-the-setting")})
    assert found.get_secret_value() == "from-the-file"


def test_without_a_file_the_setting_of_any_case_is_the_secret(tmp_path: Path) -> None:
    # pydantic-settings reads AUTOSCALER_SECRETS__REDIS_PASSWORD as the key `redis_password`.
    found = password("REDIS_PASSWORD", tmp_path, {"redis_password": SecretStr("s3cret")})
    assert found.get_secret_value() == "s3cret"


def test_a_secret_in_neither_place_names_the_label_and_both_places(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret) as caught:
        password("redis-password", tmp_path, {"other": SecretStr("x")})
    words = str(caught.value)
    assert words.startswith("metric.credentials='redis-password'")
    assert str(tmp_path / "redis-password") in words
    assert "AUTOSCALER_SECRETS__REDIS-PASSWORD" in words


@pytest.mark.parametrize(
    ("made", "words"),
    [
        pytest.param("empty-file", "is empty", id="an-empty-file"),
        pytest.param("a-folder", "cannot read", id="a-folder-not-a-file"),
    ],
)
def test_a_file_that_holds_no_secret_says_so(tmp_path: Path, made: str, words: str) -> None:
    if made == "a-folder":
        (tmp_path / "secret").mkdir()
    else:
        (tmp_path / "secret").write_text("\n")
    with pytest.raises(MissingSecret, match=words):
        password("secret", tmp_path, {"secret": SecretStr("unused")})


def test_an_empty_setting_is_no_secret(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret, match="AUTOSCALER_SECRETS__SECRET is empty"):
        password("secret", tmp_path, {"secret": SecretStr("")})


def test_the_settings_default_to_composes_secrets_and_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).secrets_dir == SECRETS_DIR == Path("/run/secrets")
    monkeypatch.setenv("AUTOSCALER_SECRETS__REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("AUTOSCALER_SECRETS_DIR", "/var/secrets")
    made = Settings(_env_file=None)
    assert made.secrets_dir == Path("/var/secrets")
    found = password("redis_password", Path("/nonexistent-secrets"), made.secrets)
    assert found.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(made)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["../outside", "..", ".", "/outside", "a/../../outside"]) | st.text(max_size=20)
)
def test_a_name_never_reaches_outside_the_secrets_folder(name: str) -> None:
    # The folder is empty: whatever the name, nothing is found, and what lies beside the folder
    # (`..`, a slash, an absolute path) is never read.
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "outside").write_text("not a secret of this folder")
        (Path(root) / "secrets").mkdir()
        with pytest.raises(MissingSecret) as caught:
            password(name, Path(root) / "secrets", {})
    assert str(caught.value).startswith("metric.credentials=")
