"""Fixtures of the broker tests: every service's signing key and the trust store over a copy
of the session's envelope rings (parser RS256, identity EdDSA, the rest ES256)."""

from __future__ import annotations

from pathlib import Path

import pytest
from keys_testing import copy_rings
from sealflow_testing import Env, make_env


@pytest.fixture
def env(envelope_rings_template: Path, tmp_path: Path) -> Env:
    """Sealers and openers for every service, with a clock the test sets."""
    return make_env(copy_rings(envelope_rings_template, tmp_path / "keys"))
