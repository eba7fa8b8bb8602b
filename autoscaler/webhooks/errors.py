"""The webhooks' error, under the service's one root (autoscaler/errors.py)."""

from __future__ import annotations

from autoscaler.errors import AutoscalerError


class WebhookError(AutoscalerError):
    """A webhook target that cannot be used as configured: its extra missing, its outbox file
    unusable, two targets of one name."""
