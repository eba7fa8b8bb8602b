"""Notifications over MQTT: an event for every action and error, a retained state per service,
a retained online/offline status, and the outbox that holds them while the broker is away.

    client.py      one way to reach the broker (credentials, TLS), for every connection
    notifier.py    events, retained state and status; never waits for the broker
    outbox.py      events waiting for the broker, bounded, journalled
    journal.py     the latest events of every service, numbered: the page's events

May import the core (which publishes through control.ports.Notices); never a backend, a source
or ops.
"""
