"""JWKS documents of verification keys, with Sealflow's state members.

Each JWK carries ``sealflow_state`` (``next``/``active``/``retired``); retired keys also carry
``sealflow_not_after`` (epoch seconds), after which receivers refuse them. Other JOSE libraries
ignore these members (RFC 7517 §4).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from keys.algorithms import ALGORITHMS, Algorithm
from keys.errors import JWKError
from keys.jwk import load_public_jwk, public_jwk
from keys.records import KEY_STATES, KeyState, VerificationKey

__all__ = [
    "NOT_AFTER_MEMBER",
    "STATE_MEMBER",
    "jwks_document",
    "parse_verification_jwk",
    "verification_jwk",
]

STATE_MEMBER: Final = "sealflow_state"
NOT_AFTER_MEMBER: Final = "sealflow_not_after"


def verification_jwk(key: VerificationKey) -> dict[str, object]:
    """``key`` as a public JWK with its ring state (and ``not_after`` when retired)."""
    jwk: dict[str, object] = dict(public_jwk(key.key, kid=key.kid))
    jwk[STATE_MEMBER] = key.state
    if key.not_after is not None:
        jwk[NOT_AFTER_MEMBER] = key.not_after
    return jwk


def jwks_document(keys: Iterable[VerificationKey]) -> dict[str, list[dict[str, object]]]:
    """A JWKS (``{"keys": [...]}``) of ``keys``."""
    return {"keys": [verification_jwk(key) for key in keys]}


def _state(jwk: Mapping[str, object], not_after: float | None) -> KeyState:
    value = jwk.get(STATE_MEMBER)
    if value is None:
        # A plain JWKS from elsewhere: a limit in time can only mean a retired key.
        return "active" if not_after is None else "retired"
    for state in KEY_STATES:
        if value == state:
            return state
    raise JWKError("malformed_jwk", f"JWK {STATE_MEMBER} must be one of {KEY_STATES}")


def _not_after(jwk: Mapping[str, object]) -> float | None:
    value = jwk.get(NOT_AFTER_MEMBER)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JWKError("malformed_jwk", f"JWK {NOT_AFTER_MEMBER} must be a finite number")
    return float(value)


def parse_verification_jwk(
    service: str,
    jwk: Mapping[str, object],
    *,
    thumbprint_kid: bool = True,
    algorithms: Collection[Algorithm] = ALGORITHMS,
    infer: Collection[Algorithm] = (),
) -> VerificationKey:
    """Validate one JWK of ``service``'s JWKS and return it as a :class:`VerificationKey`.

    ``thumbprint_kid``, ``algorithms`` and ``infer`` as in :func:`keys.load_public_jwk`.
    """
    loaded = load_public_jwk(jwk, thumbprint_kid=thumbprint_kid, algorithms=algorithms, infer=infer)
    not_after = _not_after(jwk)
    state = _state(jwk, not_after)
    if (state == "retired") != (not_after is not None):
        raise JWKError(
            "malformed_jwk",
            f"JWK {loaded.kid}: a retired key needs {NOT_AFTER_MEMBER}, and only a retired key",
        )
    return VerificationKey(
        service=service,
        kid=loaded.kid,
        alg=loaded.alg,
        key=loaded.key,
        state=state,
        not_after=not_after,
    )
