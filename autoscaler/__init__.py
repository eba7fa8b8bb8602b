"""compose-autoscaler: a horizontal autoscaler for Docker Compose services (and Swarm services).

The folders are the architecture; each package's docstring says what it owns and what it may
import, and `make lint` holds them to it (import-linter, pyproject.toml):

    cli.py, app.py      the entry point and the lifecycle: start-up, the loop, bounded shutdown
    swarm/              the Swarm backend: services and tasks, the cluster lease, node agents
    engine/             the Compose backend on one engine: inventory, collector, actuator, lease
    signals/            service-level demand: MQTT topics, Prometheus queries
    ops/                the operator's face: the API and page, metrics, explain, simulate
    mqtt/               notifications: events, retained state, the outbox
    controller.py       one service: spec, policy, behaviour, backoffs, the guarded runner
    the core            context (what a controller meets the world through), repairs, state,
                        spec, samples, labels, settings, backoff, errors
    policies/           (a package of its own) pure policies and behaviour rules

Higher layers import lower ones, never the reverse: the controller knows the world only through
the protocols in context.py, and policies import nothing of this package.
"""

__version__ = "0.1.0"
