"""What the Compose and Swarm backends share of Docker.

    client.py      the aiodocker client, and where its errors become EngineError
    replicas.py    a container's inspect data -> a Replica's plain facts
    collector.py   per-container samples: cgroup files (cgroups.py), the stats API as fallback

May import the core (control, labels, settings, errors); never a backend of its own level.
"""
