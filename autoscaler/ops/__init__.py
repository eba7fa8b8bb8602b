"""The operator's face: what a person or a monitoring system reads of a running autoscaler.

    api.py         /healthz /readyz /metrics /status /history /events and the page (static/)
    stream.py      what the page's event stream sends: everything once, then what changed
    metrics.py     the Prometheus registry (control.ports.Meter)
    explain.py     `autoscaler explain` and `replicas`: a running autoscaler's /status, rendered
    console.py     `autoscaler status` and `events`: services a line each, events a line each
    client.py      the terminal's commands over HTTP: status, events, pause, hold, resume
    simulate.py    `autoscaler simulate`: a trace through policies, timelines and a plot

Reads state, never acts: may import the core, policies and mqtt's journal; never a backend, a
source, or what reaches the broker.
"""
