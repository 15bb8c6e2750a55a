"""Fixtures of the key tests: one private key per algorithm (RSA is slow to generate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keys import ALGORITHMS, KeyRing, PrivateKey, generate_private_key, write_trust_store

RING_SERVICES = ("gateway", "worker")


@pytest.fixture(scope="session")
def private_keys() -> dict[str, PrivateKey]:
    return {alg: generate_private_key(alg) for alg in ALGORITHMS}


@pytest.fixture
def rings_dir(tmp_path: Path) -> Path:
    """Two services' rings (ES256) and their trust.json in a temporary keys directory."""
    directory = tmp_path / "keys"
    for service in RING_SERVICES:
        KeyRing.create(directory, service, now=1_000.0)
    write_trust_store(directory, RING_SERVICES)
    return directory
