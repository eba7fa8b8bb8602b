"""The Swarm backend: the same labels and controllers on a Swarm service, whose tasks Swarm
places and mends; the autoscaler only sets the count.

    services.py    opted-in services and their tasks as replicas; SwarmScaler (ports.Backend)
    lease.py       one actor per cluster: a Swarm config written at its version
    cluster.py     the Swarm side of a process: its services' controllers, while it leads
    agents.py      `autoscaler agent` on every node, and the controller's feed of their samples

May import backends/docker (the client, the cgroup collector the agents sample with), mqtt's
client and the core; never the Compose backend, a source or ops.
"""
