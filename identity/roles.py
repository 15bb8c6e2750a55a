"""Roles and the scopes each one grants (DESIGN §5)."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "OIDC_SCOPES",
    "ROLES",
    "ROLE_SCOPES",
    "Role",
    "check_role",
    "grant_scopes",
    "parse_scope",
    "scopes_for_role",
]

Role = Literal["viewer", "user", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

ROLE_SCOPES: Final[dict[Role, tuple[str, ...]]] = {
    "viewer": ("jobs:read",),
    "user": ("jobs:read", "jobs:write"),
    "admin": ("jobs:read", "jobs:write", "jobs:admin", "audit:read"),
}

OIDC_SCOPES: Final[tuple[str, ...]] = ("openid", "profile", "offline_access")

_MAX_SCOPE_CHARS: Final = 1024


def check_role(value: object) -> Role:
    """``value`` when it is a known role; ``ValueError`` otherwise."""
    for role in ROLES:
        if value == role:
            return role
    raise ValueError(f"unknown role {value!r}; expected one of {', '.join(ROLES)}")


def scopes_for_role(role: Role) -> tuple[str, ...]:
    """The API scopes ``role`` may hold."""
    return ROLE_SCOPES[role]


def parse_scope(scope: str | None) -> list[str]:
    """The distinct scope tokens of a space-separated ``scope`` parameter, in order."""
    if scope is None:
        return []
    if len(scope) > _MAX_SCOPE_CHARS:
        raise ValueError("scope is too long")
    seen: list[str] = []
    for token in scope.split(" "):
        if token and token not in seen:
            seen.append(token)
    return seen


def grant_scopes(requested: list[str], role: Role | None, *, oidc: bool) -> list[str]:
    """What to grant: the requested scopes the role allows (all of them when none are asked).

    With ``oidc`` the OpenID scopes are allowed too. Unknown scopes are dropped silently, as
    RFC 6749 §3.3 permits; the response's ``scope`` tells the client what it got.
    """
    allowed = list(scopes_for_role(role)) if role is not None else []
    if oidc:
        allowed = [*OIDC_SCOPES, *allowed]
    if not requested:
        return [scope for scope in allowed if scope != "offline_access"]
    return [scope for scope in requested if scope in allowed]
