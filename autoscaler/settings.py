"""Settings: `AUTOSCALER_*` environment variables (nested with `__`) and a `.env` file."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _secret(path: Path | None, given: SecretStr | None, setting: str) -> SecretStr | None:
    """A secret from its file (a Compose or Swarm secret, /run/secrets/...), else as given."""
    if path is None:
        return given
    try:
        text = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
    if not text:
        raise ValueError(f"{setting}: {path} is empty")
    return SecretStr(text)


class MqttSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    """A file holding the password (a secret); it wins over `password`."""
    topic_prefix: str = Field(default="autoscaler", min_length=1, pattern=r"^[^+#\x00]+$")
    """The topics' first levels; MQTT's wildcards and NUL are no part of a topic to publish to."""
    client_id: str | None = None
    keepalive: int = Field(default=30, ge=5, le=65535)
    outbox_size: int = Field(default=10_000, ge=1)
    """Events kept while the broker is unreachable; past this the oldest are dropped."""
    outbox_path: Path | None = None
    """A file that keeps undelivered events across restarts; in memory only when unset."""
    heartbeat: float = Field(default=60.0, gt=0)
    """Seconds between retained states of a service that does not change; a change goes out at
    once (within the interval it happens in). Each service's is up to a quarter shorter, by a
    share of its own, so that services started together do not send theirs in one round."""
    state_band: float = Field(default=5.0, ge=0)
    """Percentage points CPU or memory must move to count as a change of state."""
    tls: bool = False
    ca_file: Path | None = None
    """CA bundle to verify the broker with; the system's when unset."""
    cert_file: Path | None = None
    key_file: Path | None = None
    """Client certificate and key, for brokers that ask for one."""

    @model_validator(mode="after")
    def _password_from_file(self) -> MqttSettings:
        self.password = _secret(self.password_file, self.password, "AUTOSCALER_MQTT__PASSWORD_FILE")
        return self


SECRETS_DIR = Path("/run/secrets")
"""Where Compose (and Swarm) mount a service's `secrets:`, a file a secret."""


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
"""API hosts only this machine can reach: beyond them, the API wants a token."""


class ApiSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    """Loopback by default: /status shows container names and decisions."""
    port: int = Field(default=9464, ge=0, le=65535)
    token: SecretStr | None = None
    """When set, the page, /status, /events and /metrics ask for it (not /healthz, /readyz)."""
    token_file: Path | None = None
    """A file holding the token (a secret); it wins over `token`."""
    streams: int = Field(default=16, ge=1, le=1024)
    """Event streams (/events: open pages) served at once; one more is answered 503."""

    @model_validator(mode="after")
    def _token_from_file(self) -> ApiSettings:
        self.token = _secret(self.token_file, self.token, "AUTOSCALER_API__TOKEN_FILE")
        return self


def lease_name(projects: frozenset[str]) -> str:
    """The lease of the instances that manage these projects (all when empty): instances of two
    stacks on one host, each with its own AUTOSCALER_PROJECTS, hold two leases and both act."""
    if not projects:
        return "autoscaler-lease"
    if len(projects) == 1:
        (project,) = projects
        if re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,100}", project):
            return f"autoscaler-lease-{project}"
    digest = hashlib.sha256("\n".join(sorted(projects)).encode()).hexdigest()[:12]
    return f"autoscaler-lease-{digest}"


def instance_name() -> str:
    """A name for one instance, made once at its start: its host, its pid and a random part, so
    that it is unique even among instances of one process (the tests run several) or on hosts
    named alike. It holds the leases, names the instance's status topic, and is the `instance`
    of the events and states of the services it acts on."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class LeaseSettings(BaseModel):
    enabled: bool = True
    name: str | None = None
    """The container name that is the lease: instances sharing it share one engine's actions.
    By default one per set of managed projects (`lease_name`)."""
    ttl: float = Field(default=30.0, ge=1)
    """Seconds of silence after which another instance takes over."""


class SwarmSettings(BaseModel):
    enabled: bool | None = None
    """Scale Swarm services too: None (the default) when the engine is a Swarm manager."""
    lease_name: str | None = None
    """The Swarm config whose labels are the cluster lease: one instance acts per cluster and
    set of managed stacks. By default one per set of managed projects (`lease_name`)."""
    lease_ttl: float = Field(default=30.0, ge=1)
    """Seconds of silence after which another manager's instance takes over."""


class WebhookSettings(BaseModel):
    """One target of `AUTOSCALER_WEBHOOKS` (a JSON list): an HTTP endpoint (`url`) or a chat
    through Apprise (`apprise`), told every event the MQTT notifier tells (autoscaler/webhooks/).
    It lives here, not in webhooks/, because the settings are the ground floor every layer reads.
    """

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    """The endpoint that is POSTed each event."""
    apprise: SecretStr | None = None
    """An Apprise URL (`ntfy://...`, `slack://...`): a one-line message an event (the `chat`
    extra). A secret: such URLs hold their service's token."""
    format: Literal["json", "cloudevents-structured", "cloudevents-binary"] = "json"
    secret: SecretStr | None = None
    """The shared secret of the body's HMAC-SHA256 signature; none: unsigned."""
    secret_file: Path | None = None
    """A file holding the secret (a Compose or Swarm secret); it wins over `secret`."""
    services: tuple[str, ...] = ()
    """Only these services' events (globs: `shop/*`, `*/web`, or a service's name alone);
    all, the process's own faults included, when empty."""
    events: tuple[str, ...] = ()
    """Only these Actions (`scale_up`, `error`, ...); all when empty."""
    timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds a delivery may take before it is retried."""
    retry_cap: float = Field(default=30.0, gt=0, le=3600)
    """The longest wait between retries (they start at half a second and double)."""
    outbox_size: int = Field(default=10_000, ge=1)
    """Events kept while the target fails; past this the oldest are dropped."""
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """Names the target in the log and its outbox file; by default a digest of its address."""

    @model_validator(mode="after")
    def _one_destination(self) -> WebhookSettings:
        if (self.url is None) == (self.apprise is None):
            raise ValueError("AUTOSCALER_WEBHOOKS: give a target either `url` or `apprise`")
        for glob in self.services:
            if not glob.strip() or glob != glob.strip():
                raise ValueError(f"AUTOSCALER_WEBHOOKS services: {glob!r} is no service glob")
        for action in self.events:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", action):
                raise ValueError(f"AUTOSCALER_WEBHOOKS events: {action!r} is no event Action")
        self.secret = _secret(self.secret_file, self.secret, "AUTOSCALER_WEBHOOKS secret_file")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTOSCALER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    docker_host: str | None = Field(default_factory=lambda: os.environ.get("DOCKER_HOST"))
    """Engine address (unix:///path or tcp://host:port); DOCKER_HOST when unset."""
    docker_api_version: str | None = Field(
        default_factory=lambda: os.environ.get("DOCKER_API_VERSION") or None,
        pattern=r"^1\.\d{1,3}$",
    )
    """The Engine API version to speak (`1.41`), as Docker's own DOCKER_API_VERSION pins it; the
    engine's own version when unset (docs/platforms.md)."""
    interval: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between sampling rounds and policy evaluations."""
    projects: frozenset[str] = frozenset()
    """Only manage these Compose projects and Swarm stacks (a JSON list); all when empty."""
    dry_run: bool = False
    """Decide and publish, but never create or remove containers."""
    engine_timeout: float = Field(default=30.0, gt=0)
    """Seconds any engine call may take before it is an error (a graceful stop: its grace period
    more); the event stream is the one call without a bound."""
    relist: float = Field(default=60.0, gt=0)
    """Seconds between listings that check the event stream missed nothing: a stream that died
    without a word (a `tcp://` engine behind a NAT) is found and followed afresh."""
    clone_concurrency: int = Field(default=8, ge=1, le=256)
    """Containers created or removed at once per scale action."""
    shutdown_timeout: float = Field(default=30.0, gt=0)
    """Seconds shutdown waits for in-flight scale actions before cancelling them."""
    state_dir: Path | None = None
    """Where what a policy learns over days is kept across restarts (the predictive policy's
    daily history: a small JSON file a service); not kept when unset."""
    max_payload: int = Field(default=65_536, ge=64, le=16 << 20)
    """Bytes a metric's pushed MQTT payload or a Prometheus query's answer may have: a larger one
    is refused before any of it is parsed, and the service's metric is missing, saying so."""
    max_scrape: int = Field(default=4 << 20, ge=1024, le=256 << 20)
    """Bytes a scraped endpoint's text may have (a proxy's own metrics run to hundreds of kB)."""
    secrets_dir: Path = SECRETS_DIR
    """Where the secrets a metric source names (`metric.credentials`) are files, one a secret:
    Compose's `secrets:` mount (sources/credentials.py)."""
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Secrets a metric source may name that are no file: `AUTOSCALER_SECRETS__<NAME>`; a file
    of that name in `secrets_dir` wins."""
    loop: Literal["uvloop", "asyncio"] = "uvloop"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    """HTTP endpoints and chats told every event, each with its own outbox (a JSON list)."""

    @property
    def engine_lease(self) -> str:
        """The engine lease's container name."""
        return self.lease.name or lease_name(self.projects)

    @property
    def cluster_lease(self) -> str:
        """The cluster lease's Swarm config name."""
        return self.swarm.lease_name or lease_name(self.projects)
