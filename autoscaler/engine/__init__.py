"""The Compose backend on one engine: the only code that reads or writes that engine's
containers.

    client.py      the aiodocker client, and where its errors become EngineError
    inventory.py   opted-in containers: one listing, then the event stream
    collector.py   per-container samples: cgroup files (cgroups.py), the stats API as fallback
    actuator.py    clones a service's template and removes clones (context.Backend)
    lease.py       one actor per engine: a lease held as a container name

May import the core (labels, samples, context, errors, backoff, settings); never the
controller, another backend, signals, mqtt or ops.
"""
