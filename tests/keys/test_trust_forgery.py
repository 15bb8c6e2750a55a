"""Who can write trust.json cannot make daemons trust a key: the root must have signed it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keys import KeyMaterialError, TrustStoreFile, generate_private_key, public_jwk, thumbprint


def test_an_unsigned_trust_file_with_a_rogue_key_is_not_trusted(rings_dir: Path) -> None:
    """Before bundles, any writer of trust.json (a shared volume) could add a forger's key."""
    rogue = generate_private_key("ES256").public_key()
    forged = {"version": 1, "services": {"gateway": {"keys": [public_jwk(rogue)]}}}
    path = rings_dir / "trust.json"
    path.write_text(json.dumps(forged))
    with pytest.raises(KeyMaterialError) as caught:
        TrustStoreFile(path, min_interval=0)
    assert caught.value.reason == "untrusted_bundle"


def test_a_running_daemon_ignores_a_forged_trust_file(rings_dir: Path) -> None:
    """Replacing the file under a running daemon does not add the forger's key either."""
    watcher = TrustStoreFile(rings_dir / "trust.json", min_interval=0)
    rogue = generate_private_key("ES256").public_key()
    forged = {"version": 1, "services": {"gateway": {"keys": [public_jwk(rogue)]}}}
    (rings_dir / "trust.json").write_text(json.dumps(forged))
    watcher.refresh(force=True)
    assert watcher.lookup(thumbprint(rogue)) is None
