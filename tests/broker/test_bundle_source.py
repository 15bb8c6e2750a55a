"""A daemon also takes newer trust bundles from a bundle source (the database, later)."""

from __future__ import annotations

from pathlib import Path

from broker import BrokerSettings, ServiceRuntime
from keys import KeyRing, issue_trust_bundle
from keys.trustfile import read_trust_file


class _Source:
    """An in-memory bundle source, as the PostgreSQL store will offer one."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def latest(self) -> str | None:
        return self.token


async def test_the_runtime_takes_a_newer_bundle_from_its_source(
    keys_dir: Path, tmp_path: Path
) -> None:
    """A bundle from the source is used and saved; an older one from it changes nothing."""
    old = read_trust_file(keys_dir / "trust.json")[0]
    source = _Source(None)
    settings = BrokerSettings(keys_dir=keys_dir, data_dir=tmp_path / "var")
    runtime = ServiceRuntime("worker", settings, bundle_source=source)
    # A rotation made elsewhere: the file here is put back to the old bundle afterwards.
    kid = KeyRing.load(keys_dir, "gateway").add_next().kid
    bundle, _ = issue_trust_bundle(keys_dir)
    (keys_dir / "trust.json").write_text(old.token + "\n")
    await runtime._poll_bundle_source()
    assert runtime.trust.lookup(kid) is None
    source.token = bundle.token
    await runtime._poll_bundle_source()
    assert runtime.trust.lookup(kid) is not None
    assert read_trust_file(keys_dir / "trust.json")[0].version == bundle.version
    source.token = old.token
    await runtime._poll_bundle_source()
    assert runtime.trust.bundle.version == bundle.version
