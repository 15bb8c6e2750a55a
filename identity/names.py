"""One namespace for users, client ids and service names (a token's ``sub`` is any of them).

A client-credentials token's ``sub`` is its client id and a user's is the username, and the
services seal envelopes as themselves; so a client named like a user would own that user's
jobs, and revoking a user named like a service would silence that service. Every name is
therefore claimed once, case-insensitively, in the ``names`` table (its primary key makes two
processes racing for one name fail the second), and the service names are never free.
"""

from __future__ import annotations

from typing import Final, Literal

import aiosqlite

from identity.errors import InvalidRequest
from schemas import SERVICES

__all__ = [
    "MAX_NAME_CHARS",
    "NAMES_SCHEMA",
    "NameKind",
    "check_name",
    "claim_existing_names",
    "claim_name",
    "folded",
    "refuse_reserved",
    "reserved_name",
    "taken_error",
]

NameKind = Literal["user", "client"]
MAX_NAME_CHARS: Final = 128

NAMES_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS names (
    folded TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL
);
"""

_SERVICES: Final = frozenset(service.casefold() for service in SERVICES)


def folded(name: str) -> str:
    """The form names are compared in (Unicode case folding)."""
    return name.casefold()


def check_name(kind: str, value: str) -> str:
    """``value`` when it is 1..128 printable characters without outer spaces."""
    if (
        not value
        or len(value) > MAX_NAME_CHARS
        or not value.isprintable()
        or value != value.strip()
    ):
        raise InvalidRequest(f"{kind} must be 1..{MAX_NAME_CHARS} printable characters")
    return value


def reserved_name(name: str) -> bool:
    """True when ``name`` is a service's (``identity``, ``gateway``, ``worker``, …)."""
    return folded(name) in _SERVICES


def refuse_reserved(name: str, kind: NameKind) -> None:
    """Check ``name`` for a new user or client; a clear error if it is a service's."""
    check_name("username" if kind == "user" else "client_id", name)
    if reserved_name(name):
        raise InvalidRequest(
            f"{name!r} is the name of a Sealflow service; users, clients and services share"
            " one namespace"
        )


def taken_error(name: str, kind: NameKind, holder: tuple[str, str] | None) -> InvalidRequest:
    """The error for claiming ``name`` when ``holder`` (its name and kind) holds it already."""
    taken, owner = (name, kind) if holder is None else holder
    if (taken, owner) == (name, kind):
        return InvalidRequest(f"{kind} {name!r} already exists")
    return InvalidRequest(
        f"{name!r} is already taken by a {owner} ({taken!r}); users, clients and services"
        " share one namespace, and names differing only in case count as one"
    )


async def claim_name(db: aiosqlite.Connection, name: str, kind: NameKind) -> None:
    """Claim ``name`` for a new user or client, in the caller's transaction; a clear error if
    it is a service's or already taken (by either kind, in any letter case)."""
    refuse_reserved(name, kind)
    try:
        await db.execute(
            "INSERT INTO names (folded, name, kind) VALUES (?, ?, ?)", (folded(name), name, kind)
        )
    except aiosqlite.IntegrityError as error:
        async with db.execute(
            "SELECT name, kind FROM names WHERE folded = ?", (folded(name),)
        ) as cursor:
            row = await cursor.fetchone()
        holder = None if row is None else (str(row[0]), str(row[1]))
        raise taken_error(name, kind, holder) from error


async def claim_existing_names(db: aiosqlite.Connection) -> list[str]:
    """Claim the names of users and clients made before the ``names`` table existed.

    Returns the names that clash (a service's name, a user and a client, or two names differing
    only in case): made under the old rules, they are left as they are for the operator to fix.
    """
    clashes: list[str] = []
    for kind, query in (
        ("user", "SELECT username FROM users ORDER BY username"),
        ("client", "SELECT client_id FROM clients ORDER BY client_id"),
    ):
        async with db.execute(query) as cursor:
            rows = await cursor.fetchall()
        for (name,) in rows:
            if reserved_name(str(name)):
                clashes.append(str(name))
            cursor = await db.execute(
                "INSERT OR IGNORE INTO names (folded, name, kind) VALUES (?, ?, ?)",
                (folded(str(name)), str(name), kind),
            )
            if cursor.rowcount == 0:
                async with db.execute(
                    "SELECT name, kind FROM names WHERE folded = ?", (folded(str(name)),)
                ) as found:
                    row = await found.fetchone()
                if row is not None and (str(row[0]), str(row[1])) != (str(name), kind):
                    clashes.append(str(name))
    await db.commit()
    return clashes
