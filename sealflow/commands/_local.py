"""Commands that read this machine's state say where they looked, and say so when it is empty.

Run from the wrong directory, ``./var`` is simply another (empty) place: one line on stderr
naming the resolved directories keeps that from passing as "nothing happened".
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["say_when_empty", "say_where"]


def _shown(place: Path | str) -> str:
    """A path resolved (``./var`` says nothing about where it is); anything else as it is."""
    return str(place.resolve()) if isinstance(place, Path) else place


def say_where(**places: Path | str) -> None:
    """One stderr line: ``using data dir /abs/var, keys dir /abs/var/keys`` (stdout stays data)."""
    named = ", ".join(f"{what.replace('_', ' ')} {_shown(place)}" for what, place in places.items())
    click.echo(f"using {named}", err=True)


def say_when_empty(count: int, what: str, where: Path | str, setting: str) -> None:
    """After a listing: name the place plainly when it held nothing."""
    if count == 0:
        click.echo(
            f"no {what} in {_shown(where)} (check {setting}, or run this where the service keeps "
            "its data)",
            err=True,
        )
