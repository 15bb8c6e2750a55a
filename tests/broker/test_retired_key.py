"""An envelope signed with a key past its ``not_after`` is refused as ``key_retired``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sealflow_testing import NOW, job_message

from broker import EnvelopeError, Opener, Reason, Sealer, SpentIds
from keys import KeyRing, TrustStore
from schemas import SERVICES


def test_a_retired_key_is_accepted_until_its_not_after_then_refused_as_retired(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    for service in SERVICES:
        KeyRing.create(keys_dir, service, now=NOW - 100)
    ring = KeyRing.load(keys_dir, "gateway")
    old = ring.signing_key()
    ring.add_next(now=NOW - 50)
    ring.promote_next(grace_seconds=10, now=NOW)
    trust = TrustStore.from_rings(keys_dir, now=NOW)
    sealed = Sealer(old, clock=lambda: NOW).seal(
        job_message(), typ="job.submitted", aud="worker", sub="alice"
    )

    def open_at(moment: float) -> None:
        Opener("worker", trust, spent=SpentIds(10), clock=lambda: moment).open(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        )

    open_at(NOW + 5)
    with pytest.raises(EnvelopeError) as refused:
        open_at(NOW + 11)
    assert refused.value.reason is Reason.KEY_RETIRED
    assert "gateway" in refused.value.detail
