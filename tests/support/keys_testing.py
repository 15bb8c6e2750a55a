"""Key material for tests, made once per session and copied into each test that needs its own.

Generating rings is the slow part of many fixtures (an RSA-3072 key takes a tenth of a second
or more on a busy machine), so a session makes each set of rings once, into a template
directory, and a test gets a private copy it may rotate, retire or delete keys in.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from keys import Algorithm, KeyRing, write_trust_store
from schemas import SERVICES

__all__ = ["ENVELOPE_ALGORITHMS", "copy_rings", "make_rings"]

ENVELOPE_ALGORITHMS: Mapping[str, Algorithm] = {"parser": "RS256", "identity": "EdDSA"}
"""The envelope tests' mix: the parser's ring is RS256, the identity's EdDSA, the rest ES256."""


def make_rings(directory: Path, algorithms: Mapping[str, Algorithm] | None = None) -> Path:
    """Rings for every service (ES256 unless ``algorithms`` says otherwise) and trust.json."""
    chosen = algorithms or {}
    for service in SERVICES:
        KeyRing.create(directory, service, chosen.get(service, "ES256"))
    write_trust_store(directory)
    return directory


def copy_rings(template: Path, directory: Path) -> Path:
    """A private copy of ``template`` at ``directory``: same keys, fresh files and file times.

    Modes are kept (keys stay 0600, directories 0700); modification times are the copy's, as
    they would be for rings just made, so a reload check sees later changes as changes.
    """
    shutil.copytree(template, directory, copy_function=shutil.copy)
    return directory
