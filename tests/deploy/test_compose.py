"""docker-compose.yml parses with Compose itself and runs every daemon from the one image."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAEMONS = {"identity", "gateway", "worker", "parser", "audit"}


def _compose() -> list[str]:
    # Compose v2 is a plugin of the docker client; Debian's docker-compose (v1) is what
    # `make test` installs where the plugin is missing. Neither needs a Docker engine for `config`.
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail(
            "neither `docker compose` nor `docker-compose` is installed (make test installs it)"
        )
    return [legacy]


def _config() -> dict[str, Any]:
    result = subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_file_parses_and_runs_every_daemon_from_one_image() -> None:
    config = _config()
    services = config["services"]
    assert isinstance(services, dict)
    assert {"rabbitmq", "keys", *DAEMONS} <= set(services)
    for name in DAEMONS:
        service = services[name]
        assert service["image"] == "sealflow:dev"
        assert service["command"] == [name]
        assert service["environment"]["SEALFLOW_AMQP_URL"].startswith("amqp://")


def test_compose_publishes_ports_on_loopback_only() -> None:
    services = _config()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            published = (
                port
                if isinstance(port, str)
                else f"{port.get('host_ip', '')}:{port.get('published')}"
            )
            assert str(published).startswith("127.0.0.1:"), (name, port)
