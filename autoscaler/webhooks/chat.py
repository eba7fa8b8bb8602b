"""Chats (Slack, Discord, ntfy, Teams, e-mail, ...) through Apprise, which knows each service's
format: a target's `apprise` URL, told one line of text an event.

Apprise is the optional `chat` extra (`pip install 'compose-autoscaler[chat]'`), imported only
when a target names one, so that an install without it runs every other kind of target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autoscaler.webhooks.errors import WebhookError

if TYPE_CHECKING:
    import apprise


def line(event: Mapping[str, Any]) -> str:
    """The event as a person reads it: `shop/web scale_up 1 → 3: cpu 80% vs 50% a replica`."""
    actor = event.get("Actor", {}).get("ID", "autoscaler")
    text = f"{actor} {event.get('Action', 'event')}"
    if "from" in event and "to" in event:
        text += f" {event['from']} → {event['to']}"
    why = event.get("reason") or event.get("message")
    return f"{text}: {why}" if why else text


class Chat:
    def __init__(self, url: str, name: str) -> None:
        """`url`: an Apprise URL; `name`: the target's, for errors."""
        try:
            import apprise
        except ImportError as exc:
            raise WebhookError(
                f"AUTOSCALER_WEBHOOKS: target {name} sets `apprise`, which needs the `chat` "
                "extra: pip install 'compose-autoscaler[chat]'"
            ) from exc
        self._apprise: apprise.Apprise = apprise.Apprise()
        if not self._apprise.add(url):
            scheme = url.partition("://")[0]
            raise WebhookError(
                f"AUTOSCALER_WEBHOOKS: target {name}: `apprise` is no URL Apprise can send to "
                f"(scheme {scheme!r})"
            )

    async def send(self, event: Mapping[str, Any]) -> bool:
        """Whether the chat took the event's line (Apprise says only yes or no: a no is
        retried)."""
        title = f"autoscaler: {event.get('Action', 'event')}"
        return bool(await self._apprise.async_notify(body=line(event), title=title))
