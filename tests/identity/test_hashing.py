"""Password hashing keeps its production cost: the suite's cheap Argon2 stays in the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from argon2 import Parameters, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from identity.hashing import hash_password, verify_password

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json
from identity.hashing import hash_password
print(json.dumps(hash_password("probe password")))
"""


def test_a_fresh_interpreter_hashes_with_the_rfc_9106_low_memory_profile() -> None:
    """Outside this test process (where conftest swaps in cheap parameters) the defaults hold."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, check=True
    )
    stored = json.loads(result.stdout)
    parameters: Parameters = extract_parameters(stored)
    assert parameters == RFC_9106_LOW_MEMORY


def test_hashes_made_with_other_parameters_still_verify() -> None:
    """A hash keeps its own parameters: a password stored under any cost verifies."""
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password(None, "correct horse")
