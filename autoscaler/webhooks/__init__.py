"""Webhooks: every event the MQTT notifier tells, POSTed to HTTP endpoints too (a plain JSON body
or a CloudEvents 1.0 event, signed with a shared secret), or told to a chat through Apprise;
each target with its own durable outbox, delivered in order, retried with backoff.

    target.py      one configured target: its name, its address as the log shows it, and which
                   events it wants (services by glob, event Actions)
    body.py        what goes over the wire: plain JSON, CloudEvents structured or binary
    signature.py   the HMAC-SHA256 signature of a body and its timestamp, made and checked
    chat.py        one line of text an event, sent through Apprise (the optional `chat` extra)
    sender.py      one target's outbox and its delivery loop: ordered, at least once
    dispatcher.py  every target, as the app wires them: handed each event, run as parts
    errors.py      WebhookError: a target that cannot be used as configured

May import the settings, the errors and mqtt's outbox (the same journalled queue MQTT keeps);
never the core, a backend, a source or ops. The notifier hands events here through a callback
the app gives it, so mqtt never imports this package.
"""
