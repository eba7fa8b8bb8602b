"""Service-level measures of demand, the sources a service's `autoscaler.metric.*` labels name.
Each kind is one module that owns its labels (its `Options`) and its reading (its reader), and
one line in registry.py:

    base.py        what a kind is: its options, its reader, the members a value is made of
    bounds.py      how much a source may read, and a number no float holds
    credentials.py the secret a queue source names (a Compose secret's file, or a setting)
    urls.py        a queue source's metric.url and the labels checked with it
    servers.py     what every queue source does alike: a client a server, read, backoff
    mqtt.py        a number on an MQTT topic (wildcards summed), acted on as it arrives
    prometheus.py  an instant PromQL query
    scrape.py      a sample of a Prometheus text endpoint, read directly
    redis.py       a Redis queue's backlog: a list's length, a stream group's lag and pending
    rabbitmq.py    a RabbitMQ queue's ready (and unacknowledged) messages, or its publish rate
    nats.py        a NATS JetStream consumer's pending (and unacknowledged) messages
    postgres.py    the number a user's read-only SELECT returns (a jobs table)
    registry.py    KINDS: the kinds by name; OPTIONS: what the core parses labels with
    signals.py     the sources the services name, followed, and read as the policy's Signal

A value reaches the policy with its age; a missing, stale or non-finite one reaches it as
missing with the reason, and the count holds: never a scale-down on missing data.

May import mqtt's client and the core; never a backend or ops.
"""
