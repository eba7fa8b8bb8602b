"""The kinds of metric source, by the name `autoscaler.metric.source` gives: one line a kind."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from autoscaler.sources import mqtt, nats, postgres, prometheus, rabbitmq, redis, scrape
from autoscaler.sources.base import Kind

KINDS: Mapping[str, Kind] = {
    "mqtt": Kind(mqtt.Options, mqtt.Topics.made),
    "prometheus": Kind(prometheus.Options, prometheus.Queries.made),
    "scrape": Kind(scrape.Options, scrape.Scrapes.made),
    "redis": Kind(redis.Options, redis.reader),
    "rabbitmq": Kind(rabbitmq.Options, rabbitmq.reader),
    "nats": Kind(nats.Options, nats.reader),
    "postgresql": Kind(postgres.Options, postgres.reader),
}

OPTIONS: Mapping[str, type[BaseModel]] = {name: kind.options for name, kind in KINDS.items()}
"""What the core parses a service's `metric.*` labels with (control/spec.py)."""
