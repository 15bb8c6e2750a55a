"""docker-compose.yml, as Compose itself reads it (``config``, no engine needed): every daemon
from one image on PostgreSQL, keys made once by a one-shot service into one volume per service,
healthchecks everywhere, no shared network namespace, and worker/parser free to scale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.daemon import AuditDaemonSettings
from gateway.settings import GatewaySettings
from identity.settings import IdentitySettings
from keys import ROOT_KEY_FILE, ROOT_PUBLIC_FILE, TRUST_FILE
from parser.daemon import ParserSettings
from schemas import SERVICES
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DAEMONS = set(SERVICES)
HEALTH_PORTS = {
    "worker": WorkerSettings.model_fields["health_port"].default,
    "parser": ParserSettings.model_fields["health_port"].default,
    "audit": AuditDaemonSettings.model_fields["health_port"].default,
    "identity": IdentitySettings.model_fields["identity_health_port"].default,
    "gateway": GatewaySettings.model_fields["health_port"].default,
}
"""Each daemon's default ``SEALFLOW_<DAEMON>_HEALTH_PORT``, which the containers keep."""
SCALED = ("worker", "parser")


def _compose() -> list[str]:
    """Compose v2 (a docker plugin) or Debian's docker-compose v1, which `make test` installs;
    neither needs a Docker engine for ``config``."""
    docker = shutil.which("docker")
    if docker:
        probe = [docker, "compose", "version"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail(
            "neither `docker compose` nor `docker-compose` is installed (make test installs it)"
        )
    return [legacy]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, defaults filled in)."""
    result = subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = yaml.safe_load(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def _services(config: dict[str, Any]) -> dict[str, Any]:
    services = config["services"]
    assert isinstance(services, dict)
    return services


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """``{container path: volume name}`` of a service's named volumes."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts[target] = source
    return mounts


def test_every_daemon_runs_from_one_image(config: dict[str, Any]) -> None:
    """Each daemon is the one image with its own command, on the broker."""
    services = _services(config)
    assert {"rabbitmq", "postgres", "keys", *DAEMONS} <= set(services)
    for name in DAEMONS:
        service = services[name]
        assert service["image"] == "sealflow:dev"
        assert service["command"] == [name]
        assert service["environment"]["SEALFLOW_AMQP_URL"].startswith("amqp://")


def test_compose_publishes_ports_on_loopback_only(config: dict[str, Any]) -> None:
    """Nothing is published beyond the machine itself."""
    for name, service in _services(config).items():
        for port in service.get("ports", []):
            published = (
                port
                if isinstance(port, str)
                else f"{port.get('host_ip', '')}:{port.get('published')}"
            )
            assert str(published).startswith("127.0.0.1:"), (name, port)


def test_postgres_is_healthchecked_persistent_and_used_by_every_daemon(
    config: dict[str, Any],
) -> None:
    """A supported PostgreSQL with pg_isready and a volume; every daemon's
    SEALFLOW_DATABASE_URL points at it and waits for it to be healthy."""
    services = _services(config)
    postgres = services["postgres"]
    image, _, tag = postgres["image"].partition(":")
    assert image == "postgres"
    assert int(tag.split(".")[0]) >= 14, tag  # a major version still supported
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert _mounts(postgres)["/var/lib/postgresql/data"] in config["volumes"]
    for name in DAEMONS:
        service = services[name]
        assert service["environment"]["SEALFLOW_DATABASE_URL"].startswith("postgresql://sealflow:")
        assert "@postgres:5432/" in service["environment"]["SEALFLOW_DATABASE_URL"]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_rabbitmq_is_a_supported_image_with_a_fixed_hostname(config: dict[str, Any]) -> None:
    """RabbitMQ 4.x; a fixed hostname keeps its node name, hence its data, across re-creation."""
    rabbitmq = _services(config)["rabbitmq"]
    image, _, tag = rabbitmq["image"].partition(":")
    assert image == "rabbitmq"
    assert int(tag.split(".")[0]) >= 4, tag
    assert rabbitmq["hostname"] == "rabbitmq"
    assert rabbitmq["healthcheck"]["test"]


def test_every_service_has_a_healthcheck_on_its_health_port(config: dict[str, Any]) -> None:
    """Every long-running service is healthchecked; the daemons through their /healthz, which
    listens on 0.0.0.0 there (SEALFLOW_HEALTH_HOST)."""
    services = _services(config)
    for name, service in services.items():
        if name == "keys":
            continue
        assert service.get("healthcheck", {}).get("test"), name
    for name in DAEMONS:
        service = services[name]
        assert f"http://127.0.0.1:{HEALTH_PORTS[name]}/healthz" in service["healthcheck"]["test"]
        assert service["environment"]["SEALFLOW_HEALTH_HOST"] == "0.0.0.0"


def test_keys_come_from_a_one_shot_service_every_daemon_waits_for(
    config: dict[str, Any],
) -> None:
    """``keys`` runs once and is not restarted; each daemon starts only after it succeeded."""
    services = _services(config)
    assert services["keys"]["restart"] == "no"
    for name in DAEMONS:
        depends = services[name]["depends_on"]
        assert depends["keys"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name


def test_each_daemon_mounts_only_its_own_keys_and_only_keys_sees_the_root(
    config: dict[str, Any],
) -> None:
    """One keys volume per daemon, mounted as its SEALFLOW_KEYS_DIR and by no other daemon;
    the operator's volume (root.pem) is mounted by the one-shot ``keys`` service alone."""
    services = _services(config)
    keys_mounts = _mounts(services["keys"])
    admin = keys_mounts["/srv/keys/admin"]
    for name in DAEMONS:
        service = services[name]
        keys_dir = service["environment"]["SEALFLOW_KEYS_DIR"]
        own = _mounts(service)[keys_dir]
        assert keys_mounts[f"/srv/keys/{name}"] == own, name
        for other in DAEMONS - {name}:
            assert own not in _mounts(services[other]).values(), (name, other)
    users_of_admin = [name for name, s in services.items() if admin in _mounts(s).values()]
    assert users_of_admin == ["keys"]


def test_the_gateway_reaches_the_identity_by_an_internal_url(config: dict[str, Any]) -> None:
    """No shared network namespace: the gateway fetches keys at the identity's service name,
    while tokens' iss stays the public issuer URL browsers use."""
    services = _services(config)
    for name, service in services.items():
        assert "network_mode" not in service, name
    gateway = services["gateway"]["environment"]
    assert gateway["SEALFLOW_ISSUER"] == services["identity"]["environment"]["SEALFLOW_ISSUER"]
    assert gateway["SEALFLOW_ISSUER_INTERNAL_URL"] == "http://identity:8081"
    assert gateway["SEALFLOW_AUDIT_URL"] == "http://audit:8082"


def test_worker_and_parser_scale(config: dict[str, Any]) -> None:
    """``--scale worker=2 --scale parser=2``: no container name, no host port, and no volume
    of their own beyond keys and the blobs the gateway shares (their state is in PostgreSQL)."""
    services = _services(config)
    for name in SCALED:
        service = services[name]
        assert "container_name" not in service, name
        assert not service.get("ports"), name
        for target, volume in _mounts(service).items():
            assert target in {"/var/lib/sealflow/keys", "/var/lib/sealflow/blobs"}, (name, target)
            if target == "/var/lib/sealflow/blobs":
                assert volume in _mounts(services["gateway"]).values()
    for name, service in services.items():
        assert "container_name" not in service, name


def _keys_script(config: dict[str, Any], root: Path) -> str:
    """The ``keys`` service's shell script, as the container's shell would get it, with its
    volumes moved under ``root``."""
    keys = _services(config)["keys"]
    assert keys["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = keys["command"]
    assert isinstance(script, str)
    return script.replace("$$", "$").replace("/srv/keys", str(root))


def test_the_keys_script_exports_each_host_alone_and_is_idempotent(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """Run the one-shot's own script with this checkout's ``sealflow``: each volume gets its
    ring, root.jwk and trust.json only (never root.pem); a second run changes nothing."""
    root = tmp_path / "srv-keys"
    for volume in ("admin", *DAEMONS):
        (root / volume).mkdir(parents=True)  # the mount points, as the image makes them
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = _keys_script(config, root)

    def run() -> None:
        result = subprocess.run(
            ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr

    run()
    assert (root / "admin" / ROOT_KEY_FILE).exists()
    snapshot = {}
    for name in DAEMONS:
        host = root / name
        assert {path.name for path in host.iterdir()} == {name, ROOT_PUBLIC_FILE, TRUST_FILE}
        snapshot[name] = {
            path: path.read_bytes() for path in sorted(host.rglob("*")) if path.is_file()
        }
    run()
    for name in DAEMONS:
        host = root / name
        again = {path: path.read_bytes() for path in sorted(host.rglob("*")) if path.is_file()}
        assert again == snapshot[name], name
