"""Fixtures of the broker tests: every service's signing key and the trust store, from the
session's envelope rings (parser RS256, identity EdDSA, the rest ES256)."""

from __future__ import annotations

import pytest
from sealflow_testing import Env, EnvelopeKeys


@pytest.fixture
def env(envelope_keys: EnvelopeKeys) -> Env:
    """Sealers and openers for every service, with a clock the test sets."""
    return envelope_keys.env()
