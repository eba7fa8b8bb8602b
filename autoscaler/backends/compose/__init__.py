"""The Compose backend on one engine: the only code that writes that engine's containers.

    inventory.py   opted-in containers: one listing, then the event stream
    actuator.py    clones a service's template and removes clones (control.ports.Backend)
    marker.py      a sleep the autoscaler put a service in, recorded on the engine
    lease.py       one actor per engine: a lease held as a container name
    holder.py      who holds a lease, and the proofs that a holder is dead

May import backends/docker and the layers below; never the Swarm backend, a source, mqtt or
ops.
"""
