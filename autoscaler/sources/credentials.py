"""The password a queue source reads its server with, named by its label, never given in one.

    metric.credentials   the NAME of a secret (labels are readable by anyone who may
                         `docker inspect` the container: a secret in one is no secret)
    metric.user          the user name, where the server has users (a name is no secret)

A name is resolved, in this order, to

    1. the file `<secrets_dir>/<name>`: Compose mounts a service's `secrets:` at
       /run/secrets/<name> (AUTOSCALER_SECRETS_DIR moves it), so the password never enters
       the autoscaler's environment;
    2. the setting `AUTOSCALER_SECRETS__<NAME>` (any case), where no secret can be mounted.

The file wins, as `AUTOSCALER_MQTT__PASSWORD_FILE` wins over the password setting: a secret
that was mounted is the one meant, whatever the environment still holds. A name found in
neither place is the service's error, saying both places looked; the next try looks again, so
that a secret mounted or rotated later is taken without a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from autoscaler.settings import SECRETS_DIR

LABEL = "metric.credentials"
NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
"""A secret's name, as Compose's are: never a path (no `/`, no leading dot)."""


class MissingSecret(LookupError):
    """The named secret is in neither place, or its file cannot be read or is empty."""


def password(
    name: str, directory: Path = SECRETS_DIR, settings: Mapping[str, SecretStr] | None = None
) -> SecretStr:
    """The secret `name`: its file in `directory`, else its setting; MissingSecret saying where
    it was looked for."""
    if re.fullmatch(NAME, name) is None:
        raise MissingSecret(f"{LABEL}={name!r}: a secret's name is letters, digits, _ . or -")
    path = directory / name
    try:
        text = path.read_text().rstrip("\r\n")
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise MissingSecret(f"{LABEL}={name!r}: cannot read {path}: {exc.strerror}") from exc
    else:
        if not text:
            raise MissingSecret(f"{LABEL}={name!r}: {path} is empty")
        return SecretStr(text)
    wanted = name.casefold()
    for key, value in (settings or {}).items():
        if key.casefold() == wanted:
            if not value.get_secret_value():
                raise MissingSecret(f"{LABEL}={name!r}: the setting {setting(name)} is empty")
            return value
    raise MissingSecret(
        f"{LABEL}={name!r}: no such secret: neither a file {path} (a Compose secret, "
        f"`secrets:`) nor a setting {setting(name)}"
    )


def refused(
    name: str | None, user: str | None, told: str, *, wanted: str = "a password", lone: str = ""
) -> str:
    """Why a server refused the login, naming the label to look at: no secret named where it
    wants one (`wanted`), or the one named refused, for metric.user (else `lone`, how it was
    sent). `told`: what the server said."""
    if name is None:
        return f"{LABEL}: the server wants {wanted} and none is named ({told})"
    # A server tells no user from a wrong password, so as not to tell who exists.
    refused_for = f" for metric.user={user!r}, no such user or not its password" if user else lone
    return (
        f"{LABEL}={name!r}: the server refused it{refused_for} ({told}); the secret: its file, "
        f"or the setting {setting(name)}"
    )


def setting(name: str) -> str:
    """The environment variable that may hold the secret `name`."""
    return f"AUTOSCALER_SECRETS__{name.upper()}"
