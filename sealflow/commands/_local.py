"""Commands that read this machine's state say where they looked, and say so when it is empty.

Run from the wrong directory, ``./var`` is simply another (empty) place: one line on stderr
naming the resolved directories keeps that from passing as "nothing happened".
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["say_when_empty", "say_where"]


def say_where(**places: Path) -> None:
    """One stderr line: ``using data dir /abs/var, keys dir /abs/var/keys`` (stdout stays data)."""
    named = ", ".join(f"{what.replace('_', ' ')} {path.resolve()}" for what, path in places.items())
    click.echo(f"using {named}", err=True)


def say_when_empty(count: int, what: str, where: Path, setting: str) -> None:
    """After a listing: name the place plainly when it held nothing."""
    if count == 0:
        click.echo(
            f"no {what} in {where.resolve()} (check {setting}, or run this where the service keeps "
            "its data)",
            err=True,
        )
