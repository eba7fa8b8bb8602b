"""A queue source's `metric.url`, and the labels checked with it, the same way for every source:

    metric.url          scheme://host:port[/path]: never a user, password or ?option in it (a
                        label is readable by anyone who may inspect the container); a path only
                        where the source gives it a meaning (a database, a vhost)
    metric.ca           a CA file, with a TLS scheme only
    metric.user         with metric.credentials, where the source sends the two together
                        (credentials.py resolves the secret's name)

A `Url` is one source's rule for its URL: its schemes with their default ports, which of them
are TLS, what a path is. Its errors are PydanticCustomError, so that the label error names the
label; `label_error` is the error of one label found checking several together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

INSTEAD = (
    "labels are readable by anyone who may inspect the container: put the {secret} in a Compose "
    "secret and name it in metric.credentials (the file /run/secrets/<name>, or the setting "
    "AUTOSCALER_SECRETS__<NAME>), and the user in metric.user"
)
"""Where a secret goes instead of a label, in every error that finds one in a label."""


def no_path(parts: SplitResult) -> str | None:
    """A URL's path, where the source gives a path no meaning: none (a `/` alone will do)."""
    return "no path: only {holds}" if parts.path.strip("/") else None


@dataclass(frozen=True, slots=True)
class Url:
    """What one source's metric.url may be, and how it is read."""

    ports: Mapping[str, int]
    """Its schemes, each with its default port."""
    tls: tuple[str, ...]
    """The schemes that are TLS: metric.ca only with one of them."""
    holds: str
    """What the URL holds, for its errors: `a host and a port`."""
    path: Callable[[SplitResult], str | None] = no_path
    """Why the URL's path is wrong, or None: {holds} in it is `holds`. No path by default."""
    token: bool = False
    """A user alone in the URL is a token (NATS reads it so): a secret too."""

    @property
    def pattern(self) -> str:
        """The URL label's pattern: one of the schemes."""
        return rf"^({'|'.join(map(re.escape, self.ports))})://\S+$"

    def checked(self, url: str) -> str:
        """The label's validator: the URL as it is, or PydanticCustomError (`address`)."""
        self.address(url)
        return url

    def address(self, url: str) -> SplitResult:
        """The URL's parts: a host, a port, the path the source means and nothing else;
        PydanticCustomError saying what is wrong with it."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise PydanticCustomError(
                "url", "not a URL: {problem}", {"problem": str(exc)}
            ) from None
        if self.token and "@" in parts.netloc:
            instead = {"instead": INSTEAD.format(secret="password (or token)")}
            raise PydanticCustomError(
                "url", "a user, token or password in a label: {instead}", instead
            )
        if parts.password is not None:
            instead = {"instead": INSTEAD.format(secret="password")}
            raise PydanticCustomError("url", "a password in a label: {instead}", instead)
        if parts.username is not None:
            raise PydanticCustomError(
                "url", "a user in the URL: give it as metric.user, and its password as a secret "
                "named in metric.credentials"
            )  # fmt: skip
        if not parts.hostname or "," in parts.netloc:
            raise PydanticCustomError("url", "no host, or several: one host[:port]")
        if parts.query or parts.fragment:
            raise PydanticCustomError(
                "url", "no ?options or #fragment: only {holds}", {"holds": self.holds}
            )
        if port == 0:
            raise PydanticCustomError("url", "port 0")
        wrong = self.path(parts)
        if wrong is not None:
            raise PydanticCustomError("url", wrong, {"holds": self.holds})
        return parts

    def port(self, parts: SplitResult) -> int:
        """The URL's port, or its scheme's default."""
        return parts.port or self.ports[parts.scheme]

    def is_tls(self, url: str) -> bool:
        return urlsplit(url).scheme in self.tls

    def tls_ca(self, ca: Path | None, info: ValidationInfo) -> Path | None:
        """metric.ca's validator: a CA only where the URL is TLS (a URL that failed its own
        check is that label's error alone)."""
        url = info.data.get("url")
        if ca is not None and isinstance(url, str) and not self.is_tls(url):
            schemes = " or ".join(f"{scheme}://" for scheme in self.tls)
            article = "an" if schemes[0] in "aeiou" else "a"
            raise PydanticCustomError("ca", f"only with {article} {schemes} url (TLS)")
        return ca


def given(model: type[BaseModel], data: Mapping[str, Any]) -> set[str]:
    """The labels of `model` given in `data` (by label or by field name), as labels."""
    fields = model.model_fields.items()
    return {label for name, f in fields if (label := f.alias or name) in data or name in data}


def label_error(model: type[BaseModel], label: str, message: str, data: Any) -> ValidationError:
    """An error of one label found checking several together: it names that label."""
    problem = PydanticCustomError("labels", message)
    line = InitErrorDetails(type=problem, loc=(label,), input=data)
    return ValidationError.from_exception_data(model.__name__, [line])


def required_with(
    model: type[BaseModel], data: Mapping[str, Any], label: str, other: str, why: str = ""
) -> None:
    """An error naming `label` where `other` is given without it."""
    labels = given(model, data)
    if other in labels and label not in labels:
        raise label_error(
            model, label, f"required with {other}" + (f": {why}" if why else ""), data
        )


def secret_with_user(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    """A user is nothing without its password, where a server takes the two together."""
    why = "the name of the secret that is its password"
    required_with(model, data, "metric.credentials", "metric.user", why)
