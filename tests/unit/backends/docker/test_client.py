"""The engine boundary: what an engine's refusal becomes, so that it says what to do about it."""

from __future__ import annotations

import aiodocker
import pytest

from autoscaler.backends.docker.client import engine_errors
from autoscaler.errors import EngineError


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_call_names_the_call_and_what_a_socket_proxy_must_grant(status: int) -> None:
    with pytest.raises(EngineError) as raised, engine_errors("creating clone shop-web-3"):
        raise aiodocker.DockerError(status, "denied by the socket proxy")
    assert raised.value.status == status
    message = str(raised.value)
    assert message.startswith(f"creating clone shop-web-3: {status} denied by the socket proxy")
    assert "must grant CONTAINERS, EVENTS, INFO, VERSION and POST" in message


def test_an_engine_that_does_not_answer_is_no_http_status() -> None:
    with pytest.raises(EngineError) as raised, engine_errors("listing"):
        raise aiodocker.DockerError(900, "Cannot connect to Docker Engine")
    assert str(raised.value) == "listing: Cannot connect to Docker Engine"


def test_other_refusals_carry_no_grant_hint() -> None:
    with pytest.raises(EngineError) as raised, engine_errors("starting clone shop-web-3"):
        raise aiodocker.DockerError(409, "conflict")
    assert str(raised.value) == "starting clone shop-web-3: 409 conflict"
