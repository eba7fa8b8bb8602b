"""The core: one service's control, and the fleet of them. It speaks no backend's language:
replicas reach it as plain facts (replicas.py), and it acts through the interfaces of ports.py.

    fleet.py        the controllers of one backend's services: made with a service, gone with it
    controller.py   one service: its spec, policy, behaviour, history; what each round does
    runner.py       the guarded runner: one action in flight, its errors told, its backoff
    sleep.py        one service's sleep and wake at `min: "0"`
    metric.py       one service's metric: its value each round, its failure, the fallback count
    idle.py         one service's replicas that take no load beside saturated ones
    report.py       what the world is told of one service: events, its one state, its history
    state.py        Evaluation, ServiceState, Tally: what MQTT, /status, /metrics and explain read
    history.py      one service's last hour, a row a round
    startup.py      when replicas started on our clock, and a service's measured start-up
    keep.py         what a policy learns over days, kept across restarts
    repairs.py      broken, vanished and stale clones; what another hand is changing
    checked.py      what a step found before deciding, kept while its replicas stay the same
    spec.py         a service's labels -> a frozen ServiceSpec, or a LabelError
    replicas.py     Replica, Sample, ScaleResult; which replicas count, which is the template
    context.py      what one backend's controllers share; the clocks
    ports.py        the interfaces it consumes: Backend, Notices, Meter

May import labels, settings, errors and policies; never a backend, a source, mqtt or ops.
"""
