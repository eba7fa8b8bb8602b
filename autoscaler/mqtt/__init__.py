"""Notifications over MQTT: an event for every action and error, a retained state per service,
a retained online/offline status, and the outbox that holds them while the broker is away.

    client.py      one way to reach the broker (credentials, TLS), for every connection
    notifier.py    events, retained state and status; never waits for the broker
    outbox.py      events waiting for the broker, bounded, journalled

May import the core; never the controller (which publishes through context.Notices), a
backend, signals or ops.
"""
