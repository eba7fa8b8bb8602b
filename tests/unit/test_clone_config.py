"""What a clone copies from its template, and what it must not."""

from __future__ import annotations

from typing import Any

from autoscaler.actuator import clone_config

TEMPLATE: dict[str, Any] = {
    "Id": "abcdef0123456789" * 4,
    "Image": "sha256:feed",
    "Name": "/shop-web-1",
    "Config": {
        "Hostname": "abcdef012345",
        "Image": "shop/web:latest",
        "Cmd": ["serve"],
        "Env": ["A=1"],
        "StopSignal": "SIGQUIT",
        "StopTimeout": 20,
        "Healthcheck": {"Test": ["CMD", "true"]},
        "Labels": {
            "com.docker.compose.project": "shop",
            "com.docker.compose.service": "web",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.config-hash": "c0ffee",
            "com.docker.compose.image": "sha256:feed",
            "autoscaler.enable": "true",
        },
    },
    "HostConfig": {
        "NetworkMode": "shop_default",
        "NanoCpus": 500_000_000,
        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "unless-stopped"},
    },
    "NetworkSettings": {
        "Networks": {
            "shop_default": {
                "Aliases": ["web", "abcdef012345"],
                "IPAddress": "172.18.0.2",
                "MacAddress": "02:42:ac:12:00:02",
            }
        }
    },
}


def test_a_clone_keeps_the_templates_config_and_limits() -> None:
    config = clone_config(TEMPLATE, 4)
    assert config["Image"] == "sha256:feed"
    assert (config["Cmd"], config["Env"]) == (["serve"], ["A=1"])
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGQUIT", 20)
    assert config["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert config["HostConfig"]["NanoCpus"] == 500_000_000
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}


def test_a_clone_is_numbered_and_marked() -> None:
    labels = clone_config(TEMPLATE, 4)["Labels"]
    assert labels["com.docker.compose.container-number"] == "4"
    assert labels["autoscaler.clone-of"] == TEMPLATE["Id"]
    assert labels["com.docker.compose.service"] == "web"
    # The template's own labels are untouched.
    assert "autoscaler.clone-of" not in TEMPLATE["Config"]["Labels"]


def test_a_clone_does_not_take_what_is_unique_to_the_template() -> None:
    config = clone_config(TEMPLATE, 4)
    assert "Hostname" not in config
    endpoint = config["NetworkingConfig"]["EndpointsConfig"]["shop_default"]
    assert endpoint["Aliases"] == ["web"]
    assert "IPAddress" not in endpoint and "MacAddress" not in endpoint
    assert config["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]
    }


def test_a_clone_carries_what_makes_compose_see_it_as_an_up_to_date_container_of_the_service() -> (
    None
):
    labels = clone_config(TEMPLATE, 4)["Labels"]
    # v2 lists only containers with a config hash, and recreates those whose hash or image
    # digest differ from the file's; v1.29 reads the same project, service and number labels.
    assert labels["com.docker.compose.config-hash"] == "c0ffee"
    assert labels["com.docker.compose.image"] == "sha256:feed"
    assert labels["com.docker.compose.project"] == "shop"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "4"
