"""Service-level measures of demand, the sources a service's `autoscaler.metric.*` labels name:
a number on an MQTT topic (wildcards summed), a Prometheus query.

A value reaches the policy with its age; a missing, stale or non-finite one reaches it as
missing with the reason, and the count holds: never a scale-down on missing data.

May import mqtt's client and the core; never a backend or ops.
"""
