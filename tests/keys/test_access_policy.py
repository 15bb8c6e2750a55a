"""``AccessTokenPolicy``: which access tokens of other OpenID providers are accepted, and the
refusals that stay (a ``typ`` not accepted, a lifetime too long, odd roles)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from oidc_testing import AUTH0_ROLES_CLAIM, auth0_claims, foreign_key, keycloak_claims, sign

from keys import AccessTokenPolicy, SigningKey, TokenError, VerificationKey, verify_access_token

ISSUER = "https://sso.example/realms/sealflow"
AUDIENCE = "sealflow-gateway"
KEYCLOAK = AccessTokenPolicy(
    types=("at+jwt", "application/at+jwt", "JWT"), roles_claim="realm_access.roles"
)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return foreign_key("ES256")


def _verifier(key: SigningKey) -> VerificationKey:
    return VerificationKey(
        service="identity",
        kid=key.kid,
        alg=key.alg,
        key=key.private_key.public_key(),
        state="active",
        not_after=None,
    )


def _verify(key: SigningKey, token: str, policy: AccessTokenPolicy, issuer: str = ISSUER) -> Any:
    return verify_access_token(
        token, [_verifier(key)], issuer=issuer, audience=AUDIENCE, policy=policy
    )


def _own_claims(now: int, **overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "cli", "scope": "jobs:read",
        "roles": ["user"], "iat": now, "nbf": now, "exp": now + 300, "jti": "j" * 32,
    }  # fmt: skip
    claims.update(overrides)
    return claims


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt"])
def test_default_policy_accepts_both_rfc9068_spellings(key: SigningKey, typ: str) -> None:
    """RFC 9068 §4: ``application/at+jwt`` is the same type as ``at+jwt``."""
    claims = _verify(key, sign(key, _own_claims(int(time.time())), typ), AccessTokenPolicy())
    assert claims.roles == ("user",)
    assert claims.client_id == "cli"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT ", "", "JOSE"])
def test_default_policy_refuses_other_types(key: SigningKey, typ: str) -> None:
    """A plain JWT (e.g. an ID token) is not an access token unless configured."""
    token = sign(key, _own_claims(int(time.time())), typ)
    with pytest.raises(TokenError) as caught:
        _verify(key, token, AccessTokenPolicy())
    assert caught.value.reason == "wrong_typ"


def test_keycloak_token_accepted_with_keycloak_settings(key: SigningKey) -> None:
    """typ JWT, ``azp`` as the client, roles from ``realm_access.roles``, ``aud`` a list."""
    token = sign(key, keycloak_claims(ISSUER, AUDIENCE, int(time.time()), roles=["admin"]))
    claims = _verify(key, token, KEYCLOAK)
    assert claims.client_id == "sealflow-web"
    assert "admin" in claims.roles
    assert claims.has_scope("jobs:write")


def test_keycloak_token_refused_by_default(key: SigningKey) -> None:
    """Without ``JWT`` among the accepted types a Keycloak token is refused."""
    token = sign(key, keycloak_claims(ISSUER, AUDIENCE, int(time.time())))
    with pytest.raises(TokenError) as caught:
        _verify(key, token, AccessTokenPolicy())
    assert caught.value.reason == "wrong_typ"


def test_auth0_token_with_namespaced_roles(key: SigningKey) -> None:
    """A URL-named claim is one claim, not a dotted path; Auth0's issuer ends with ``/``."""
    issuer = "https://tenant.eu.auth0.com/"
    token = sign(key, auth0_claims(issuer, AUDIENCE, int(time.time()), roles=["viewer"]))
    policy = AccessTokenPolicy(
        types=("at+jwt", "JWT"), roles_claim=AUTH0_ROLES_CLAIM, max_lifetime=86400
    )
    claims = _verify(key, token, policy, issuer=issuer)
    assert claims.roles == ("viewer",)
    assert claims.client_id.startswith("Xk2m")
    assert AUDIENCE in claims.audience


def test_auth0_default_lifetime_is_too_long_for_the_default(key: SigningKey) -> None:
    """Auth0's 24 h tokens exceed the default 900 s maximum."""
    issuer = "https://tenant.eu.auth0.com/"
    token = sign(key, auth0_claims(issuer, AUDIENCE, int(time.time())))
    policy = AccessTokenPolicy(types=("JWT",), roles_claim=AUTH0_ROLES_CLAIM)
    with pytest.raises(TokenError) as caught:
        _verify(key, token, policy, issuer=issuer)
    assert caught.value.reason == "lifetime_too_long"


def test_lifetime_limit_is_the_setting(key: SigningKey) -> None:
    """``max_lifetime`` bounds ``exp - iat`` exactly."""
    now = int(time.time())
    token = sign(key, _own_claims(now, exp=now + 1200), "at+jwt")
    assert _verify(key, token, AccessTokenPolicy(max_lifetime=1200)).expires_at == now + 1200
    with pytest.raises(TokenError) as caught:
        _verify(key, token, AccessTokenPolicy(max_lifetime=1199))
    assert caught.value.reason == "lifetime_too_long"


@pytest.mark.parametrize(
    ("path", "claims_roles"),
    [
        ("roles", {}),
        ("realm_access.roles", {"realm_access": {}}),
        ("realm_access.roles", {"realm_access": "admin"}),
        ("realm_access.roles", {"roles": ["admin"]}),
        (AUTH0_ROLES_CLAIM, {"https://sealflow": {"example/roles": ["admin"]}}),
    ],
)
def test_missing_roles_path_means_no_roles(
    key: SigningKey, path: str, claims_roles: dict[str, object]
) -> None:
    """An absent path (or a non-object on the way) gives no roles, not an error."""
    now = int(time.time())
    claims = _own_claims(now, **claims_roles)
    if "roles" not in claims_roles:
        del claims["roles"]
    verified = _verify(key, sign(key, claims, "at+jwt"), AccessTokenPolicy(roles_claim=path))
    assert verified.roles == ()


@pytest.mark.parametrize("roles", ["admin", ["admin", 1], {"admin": True}, ["r"] * 257])
def test_roles_of_the_wrong_shape_are_refused(key: SigningKey, roles: object) -> None:
    """Roles found at the path must be a bounded string list (a lone string is one role)."""
    token = sign(key, _own_claims(int(time.time()), roles=roles), "at+jwt")
    if roles == "admin":
        assert _verify(key, token, AccessTokenPolicy()).roles == ("admin",)
        return
    with pytest.raises(TokenError) as caught:
        _verify(key, token, AccessTokenPolicy())
    assert caught.value.reason == "invalid"


def test_azp_fallback_can_be_turned_off(key: SigningKey) -> None:
    """Without the fallback a token that names its client only by ``azp`` is refused."""
    claims = _own_claims(int(time.time()), azp="web")
    del claims["client_id"]
    token = sign(key, claims, "at+jwt")
    assert _verify(key, token, AccessTokenPolicy()).client_id == "web"
    with pytest.raises(TokenError, match="client_id"):
        _verify(key, token, AccessTokenPolicy(azp_fallback=False))


def test_client_id_wins_over_azp(key: SigningKey) -> None:
    """``azp`` is only a fallback: a present ``client_id`` is the client."""
    token = sign(key, _own_claims(int(time.time()), azp="other"), "at+jwt")
    assert _verify(key, token, AccessTokenPolicy()).client_id == "cli"


@pytest.mark.parametrize(
    "kwargs", [{"types": ()}, {"types": ("",)}, {"roles_claim": ""}, {"max_lifetime": 0}]
)
def test_policy_refuses_empty_settings(kwargs: dict[str, Any]) -> None:
    """A policy that could accept nothing or check nothing is a configuration error."""
    with pytest.raises(ValueError, match="must be"):
        AccessTokenPolicy(**kwargs)
