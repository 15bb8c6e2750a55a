"""``python -m sealflow`` runs the command line (how ``sealflow up`` starts its daemons)."""

from __future__ import annotations

from sealflow.cli import main

main()
