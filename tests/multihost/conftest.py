"""Fixtures of the multi-host tests: a bridge with hosts, and relays to the root's services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from multihost import Forwarder, Network, netns_available

POSTGRES_PORT = 5432


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """A fresh bridge; the test adds its hosts. Fails (not skips) where namespaces cannot be made."""
    why_not = netns_available()
    if why_not is not None:
        pytest.fail(why_not, pytrace=False)
    with Network(tmp_path / "hosts") as made:
        yield made


@pytest.fixture
def forwarder(network: Network, amqp_url: str) -> Iterator[Forwarder]:
    """The broker's and PostgreSQL's ports, relayed from the bridge address to 127.0.0.1."""
    amqp_port = urlsplit(amqp_url).port or 5672
    with Forwarder(
        network.root_address, {amqp_port: amqp_port, POSTGRES_PORT: POSTGRES_PORT}
    ) as relay:
        yield relay


@pytest.fixture
def host_amqp_url(network: Network, amqp_url: str, forwarder: Forwarder) -> str:
    """The broker as a host on the bridge reaches it."""
    parts = urlsplit(amqp_url)
    netloc = f"{parts.username}:{parts.password}@{network.root_address}:{parts.port or 5672}"
    return parts._replace(netloc=netloc).geturl()
