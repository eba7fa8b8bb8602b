"""A target's sender against a real receiver on 127.0.0.1: in order, signed, retried with
backoff on 5xx, 408, 429, a stall or a refusal, dropped (said and counted) on any other 4xx,
and kept in its outbox file across a restart, resent with the same id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import Notifier, engine_event
from autoscaler.settings import MqttSettings, Settings, WebhookSettings
from autoscaler.webhooks.dispatcher import Webhooks, outbox_folder
from autoscaler.webhooks.errors import WebhookError
from autoscaler.webhooks.sender import Outcome, Sender, outcome
from autoscaler.webhooks.target import Target
from tests.unit.webhooks.receiver import STALL, Received, Receiver, receiving

SECRET = "shared"


def hook(**values: Any) -> WebhookSettings:
    """A target's settings, as the environment's JSON gives them (strings for URLs, secrets)."""
    return WebhookSettings.model_validate(values)


def event(n: int, action: str = "scale_up") -> dict[str, Any]:
    return engine_event(action, ServiceKey("shop", "web"), {}, ident=f"me:{n}",
                        **{"from": n, "to": n + 1})  # fmt: skip


def sender_for(receiver: Receiver, path: Path | None = None, **values: Any) -> Sender:
    settings = hook(url=receiver.url, secret=SECRET, timeout=0.5, retry_cap=0.05,
                               **values)  # fmt: skip
    return Sender(Target.of(settings), path)


@contextlib.asynccontextmanager
async def running(sender: Sender) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sender.run())
    try:
        yield task
    finally:
        sender.close()
        async with asyncio.timeout(5):
            await task


def ids(received: list[Received]) -> list[str]:
    return [r.id for r in received]


@pytest.mark.parametrize(
    ("status", "result"),
    [(200, Outcome.DELIVERED), (204, Outcome.DELIVERED), (400, Outcome.REJECTED),
     (401, Outcome.REJECTED), (404, Outcome.REJECTED), (408, Outcome.RETRY),
     (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY), (302, Outcome.RETRY)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_what_an_answer_means_for_the_event(status: int, result: Outcome) -> None:
    assert outcome(status) is result


async def test_events_reach_the_target_in_order_signed_and_leave_the_outbox() -> None:
    async with receiving(SECRET) as receiver:
        sender = sender_for(receiver)
        async with running(sender):
            for n in range(1, 6):
                sender.offer(event(n))
            await receiver.wait_for(lambda r: len(r.accepted) == 5, within=5)
        assert ids(receiver.accepted) == [f"me:{n}" for n in range(1, 6)]
        assert receiver.accepted[0].json()["from"] == 1
        assert receiver.unsigned == []
        assert (sender.pending, sender.delivered, sender.failures) == (0, 5, 0)


async def test_a_failing_target_gets_every_event_once_it_recovers_in_order_none_twice() -> None:
    async with receiving(SECRET) as receiver:
        receiver.status = lambda _: 500
        sender = sender_for(receiver)
        async with running(sender):
            for n in range(1, 4):
                sender.offer(event(n))
            await receiver.wait_for(lambda r: len(r.requests) >= 3, within=5)
            assert {r.id for r in receiver.requests} == {"me:1"}  # the oldest holds the rest
            assert sender.failing == "HTTP 500 Internal Server Error"
            receiver.status = lambda _: 200
            await receiver.wait_for(lambda r: len(r.accepted) == 3, within=5)
        assert ids(receiver.accepted) == ["me:1", "me:2", "me:3"]
        assert sender.failing is None and sender.failures >= 2


async def test_a_stall_past_the_timeout_is_retried_with_the_same_id_and_body() -> None:
    async with receiving(SECRET) as receiver:
        stalled: list[str] = []

        def stall_once(r: Received) -> int | None:
            if r.id in stalled:
                return 200
            stalled.append(r.id)
            return STALL

        receiver.status = stall_once
        sender = sender_for(receiver)
        async with running(sender):
            sender.offer(event(1))
            await receiver.wait_for(lambda r: len(r.accepted) == 1, within=5)
        first, second = receiver.requests
        assert first.id == second.id == "me:1" and first.body == second.body
        assert sender.failing is None and sender.failures == 1


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_a_target_that_asks_for_patience_is_retried(status: int) -> None:
    async with receiving(SECRET) as receiver:
        answers = iter([status])
        receiver.status = lambda _: next(answers, 200)
        sender = sender_for(receiver)
        async with running(sender):
            sender.offer(event(1))
            await receiver.wait_for(lambda r: r.accepted, within=5)
        assert ids(receiver.requests) == ["me:1", "me:1"]
        assert sender.rejected == 0


async def test_a_4xx_drops_the_event_says_so_counts_it_and_the_next_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with receiving(SECRET) as receiver:
        receiver.status = lambda r: 422 if r.id == "me:1" else 200
        sender = sender_for(receiver)
        async with running(sender):
            sender.offer(event(1))
            sender.offer(event(2))
            await receiver.wait_for(lambda r: r.accepted, within=5)
        assert ids(receiver.requests) == ["me:1", "me:2"]
        assert (sender.rejected, sender.delivered, sender.pending) == (1, 1, 0)
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "refused event me:1 for good: HTTP 422" in error.getMessage()


async def test_a_wrong_secret_is_a_401_from_the_receiver_and_the_event_is_dropped() -> None:
    async with receiving("not the same") as receiver:
        sender = sender_for(receiver)
        async with running(sender):
            sender.offer(event(1))
            await receiver.wait_for(lambda r: r.requests, within=5)
        assert len(receiver.unsigned) == 1
        assert (sender.rejected, sender.pending) == (1, 0)


async def test_a_refused_connection_keeps_the_event_for_the_next_try() -> None:
    async with receiving(SECRET) as receiver:
        url = receiver.url
    # Nothing listens there now; closing, the sender makes one try and stops at its failure.
    sender = Sender(Target.of(hook(url=url, timeout=0.5, retry_cap=0.05)), None)
    sender.offer(event(1))
    sender.close()
    async with asyncio.timeout(5):
        await sender.run()
    assert sender.failing is not None and "ClientConnectorError" in sender.failing
    assert (sender.failures, sender.pending, sender.rejected) == (1, 1, 0)


async def test_what_a_failing_target_holds_survives_a_restart_and_is_resent_with_its_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "webhook-t.outbox"
    async with receiving(SECRET) as receiver:
        receiver.status = lambda _: 500
        before = sender_for(receiver, path)
        async with running(before) as task:
            for n in range(1, 4):
                before.offer(event(n))
            await receiver.wait_for(lambda r: r.requests, within=5)
            before.close()
            async with asyncio.timeout(2):  # closing gives up at the first failure
                await task
        assert before.pending == 3

        receiver.status = lambda _: 200
        after = sender_for(receiver, path)
        assert after.pending == 3
        async with running(after):
            await receiver.wait_for(lambda r: len(r.accepted) == 3, within=5)
        assert ids(receiver.accepted) == ["me:1", "me:2", "me:3"]
        assert receiver.accepted[0].body == receiver.requests[0].body
    assert sender_for(receiver, path).pending == 0


async def test_closing_delivers_what_is_queued_while_the_target_takes_it() -> None:
    async with receiving(SECRET) as receiver:
        sender = sender_for(receiver)
        for n in range(1, 4):
            sender.offer(event(n))
        sender.close()
        async with asyncio.timeout(5):
            await sender.run()
        assert ids(receiver.accepted) == ["me:1", "me:2", "me:3"]


async def test_a_target_with_filters_queues_only_the_events_it_wants() -> None:
    async with receiving(SECRET) as receiver:
        sender = sender_for(receiver, events=("scale_down",))
        sender.offer(event(1, "scale_up"))
        sender.offer(event(2, "scale_down"))
        assert sender.pending == 1


# Apprise 2 still imports the standard library's `imghdr`, deprecated in Python 3.11.
APPRISE_IMPORT = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


@APPRISE_IMPORT
async def test_a_chat_target_gets_one_line_a_event_through_apprise() -> None:
    async with receiving() as receiver:
        chat = receiver.url.replace("http://", "json://")
        sender = Sender(Target.of(hook(apprise=chat, timeout=5, retry_cap=0.05)), None)
        async with running(sender):
            sender.offer({**event(1), "reason": "cpu 80% vs 50%"})
            (told,) = await receiver.wait_for(lambda r: r.accepted, within=10)
    body = told.json()
    assert body["message"] == "shop/web scale_up 1 → 2: cpu 80% vs 50%"
    assert body["title"] == "autoscaler: scale_up"


def test_a_chat_target_without_the_chat_extra_is_an_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise: ImportError
    settings = hook(apprise="ntfy://ntfy.sh/ops", name="ops")
    with pytest.raises(WebhookError, match=r"AUTOSCALER_WEBHOOKS: target ops .*\[chat\]"):
        Sender(Target.of(settings), None)


@APPRISE_IMPORT
def test_an_apprise_url_apprise_cannot_send_to_is_an_error_at_start() -> None:
    with pytest.raises(WebhookError, match="no URL Apprise can send to"):
        Sender(Target.of(hook(apprise="nosuchchat://x", name="x")), None)


def test_two_targets_of_one_name_are_refused_they_would_share_an_outbox() -> None:
    one = hook(url="http://127.0.0.1:9/a", name="ops")
    two = hook(url="http://127.0.0.1:9/b", name="ops")
    with pytest.raises(WebhookError, match="several targets named ops"):
        Webhooks([one, two], None)


async def test_the_outboxes_live_beside_the_mqtt_outbox_else_in_the_state_dir_else_in_memory(
    tmp_path: Path,
) -> None:
    mqtt = MqttSettings(outbox_path=tmp_path / "mqtt" / "outbox.jsonl")
    assert outbox_folder(Settings(mqtt=mqtt, state_dir=tmp_path)) == tmp_path / "mqtt"
    assert outbox_folder(Settings(state_dir=tmp_path)) == tmp_path / "webhooks"
    assert outbox_folder(Settings()) is None
    hooks = Webhooks([hook(url="http://127.0.0.1:9/a", name="ops")], tmp_path)
    hooks.offer(event(1))
    assert (tmp_path / "webhook-ops.outbox").exists()
    assert hooks.status()["ops"]["pending"] == 1
    hooks.close()  # nothing listens on port 9: the one try fails and the file is closed
    async with asyncio.timeout(5):
        await asyncio.gather(*(run() for run in hooks.parts().values()))


@pytest.mark.parametrize("enabled", [True, False], ids=["MQTT on", "MQTT off"])
def test_the_notifier_hands_every_event_on_each_with_an_id_of_its_own_in_order(
    enabled: bool,
) -> None:
    told: list[dict[str, Any]] = []
    forward: Callable[[Any], None] = told.append
    notifier = Notifier(MqttSettings(enabled=enabled), instance="me", forward=forward)
    notifier.event(ServiceKey("shop", "web"), "scale_up", {}, instance=None)
    notifier.fault("collector", OSError("gone"), instance=None)
    notifier.event(ServiceKey("shop", "web"), "scale_down", {}, instance=None)
    assert [e["id"] for e in told] == ["me:1", "me:2", "me:3"]
    assert [e["id"] for e in notifier.journal.after(0)] == ["me:1", "me:2", "me:3"]
