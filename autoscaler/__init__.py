"""compose-autoscaler: a horizontal autoscaler for Docker Compose services."""

__version__ = "0.1.0"
