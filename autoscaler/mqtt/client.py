"""One way to reach the broker, shared by every MQTT connection of the process: the notifier's,
the metric topics' (sources/) and the agents' (backends/swarm/). Credentials and TLS come from
`MqttSettings`; a wrong TLS file is a clear error at start-up, not a crash later."""

from __future__ import annotations

import ssl
from typing import Any

import aiomqtt

from autoscaler.errors import BrokerError
from autoscaler.settings import MqttSettings


def client(s: MqttSettings, tls: ssl.SSLContext | None, **extra: Any) -> aiomqtt.Client:
    """A client of the configured broker, credentials and TLS included: the notifier's, and the
    metric sources' and agents' (each a connection of its own)."""
    return aiomqtt.Client(
        s.host,
        s.port,
        username=s.username,
        password=s.password.get_secret_value() if s.password else None,
        keepalive=s.keepalive,
        timeout=10,
        tls_context=tls,
        **extra,
    )


def tls_context(s: MqttSettings) -> ssl.SSLContext | None:
    """Built once, at start-up, so that a wrong file is a clear error then, not a crash later."""
    if not s.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if s.cert_file:
            context.load_cert_chain(str(s.cert_file), str(s.key_file) if s.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"MQTT TLS files: {exc}") from exc
    return context
