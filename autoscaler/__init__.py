"""compose-autoscaler: a horizontal autoscaler for Docker Compose services (and Swarm services).

The folders are the architecture; each package's docstring says what it owns and what it may
import, and `make lint` holds them to it (import-linter, pyproject.toml):

    cli.py, app.py      the entry point and the lifecycle: start-up, the loop, bounded shutdown
    backends/           where replicas live, the only code that knows Docker's shapes: docker/
                        (what both share), compose/ (one engine), swarm/ (a cluster)
    sources/            service-level demand: MQTT topics, Prometheus queries, scraped metrics
    ops/                the operator's face: the API and page, metrics, explain, simulate
    mqtt/               notifications: events, retained state, the outbox, the journal
    control/            the core: one service's control, and the fleet of them; it meets the
                        world only through the interfaces of control/ports.py
    labels.py, settings.py, errors.py    the ground floor: label keys, settings, failure
    policies/           (a package of its own) pure policies and behaviour rules

Higher layers import lower ones, never the reverse.
"""

__version__ = "0.1.0"
