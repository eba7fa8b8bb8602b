"""Where a service's replicas live: the only code that reads or writes an engine, and the only
code that knows Docker's shapes (inspect data, task specs). Each backend gives the core plain
facts (control.replicas.Replica) and fits its interfaces (control.ports.Backend).

    docker/     what the Compose and Swarm backends share: the client, inspect -> Replica,
                per-container samples from cgroup files or the stats API
    compose/    the Compose backend on one engine: inventory, actuator, sleep marker, lease
    swarm/      the Swarm backend: services and tasks, the cluster lease, the node agents

Compose and Swarm never import each other; both may import docker/ and the layers below.
"""
