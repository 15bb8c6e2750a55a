"""``keys.jose``: the one module that uses PyJWT, and its checked token decoding."""

from __future__ import annotations

import ast
import base64
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import ACCESS_TOKEN_TYPES, ID_TOKEN_TYPES, KeyRing, TokenError
from keys.jose import decode_token, encode_token

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "schemas",
    "keys",
    "broker",
    "store",
    "identity",
    "gateway",
    "workers",
    "parser",
    "audit",
    "sealflow",
]


def _imports_jwt(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == "jwt" or name.startswith("jwt.") for name in names):
            return True
    return False


def test_only_keys_jose_imports_pyjwt() -> None:
    importers = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
        if _imports_jwt(path)
    )
    assert importers == ["keys/jose.py"]


# -- decode_token: every check, each with its reason ------------------------------------------


ISSUER, AUDIENCE, TYP = "https://id.example", "api", "at+jwt"
_TIMES = {"exp", "iat", "nbf"}


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return KeyRing.create(tmp_path_factory.mktemp("keys"), "identity")


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _decode(ring: KeyRing, token: str, **kwargs: object) -> dict[str, object]:
    options: dict[str, object] = {"typ": TYP, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5}
    options.update(kwargs)
    return decode_token(token, ring.verification_keys(), **options)  # type: ignore[arg-type]


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _reason(ring: KeyRing, token: str, **kwargs: object) -> str:
    with pytest.raises(TokenError) as caught:
        _decode(ring, token, **kwargs)
    return caught.value.reason


def test_a_valid_token_decodes(ring: KeyRing) -> None:
    token = encode_token(ring.signing_key(), _claims(), TYP)
    assert _decode(ring, token)["sub"] == "alice"


def test_audience_may_be_a_list(ring: KeyRing) -> None:
    token = encode_token(ring.signing_key(), _claims(aud=["other", AUDIENCE]), TYP)
    assert _decode(ring, token)["sub"] == "alice"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example"}, "wrong_issuer"),
        ({"aud": "other"}, "wrong_audience"),
        ({"aud": ["other"]}, "wrong_audience"),
        ({"aud": 7}, "invalid"),
        ({"exp": -60}, "expired"),
        ({"iat": 600, "exp": 900}, "issued_in_future"),
        ({"nbf": 600}, "not_yet_valid"),
        ({"exp": True}, "invalid"),
        ({"exp": "soon"}, "invalid"),
        ({"sub": 5}, "invalid"),
        ({"sub": None}, "invalid"),
    ],
)
def test_claims_are_checked(ring: KeyRing, claims: dict[str, object], reason: str) -> None:
    # Times are offsets from now, taken when the test runs (not when it was collected).
    now = int(time.time())
    claims = {
        name: now + value if name in _TIMES and type(value) is int else value
        for name, value in claims.items()
    }
    token = encode_token(ring.signing_key(), _claims(**claims), TYP)
    assert _reason(ring, token) == reason


def test_wrong_typ_is_refused(ring: KeyRing) -> None:
    token = encode_token(ring.signing_key(), _claims(), "JWT")
    assert _reason(ring, token) == "wrong_typ"


def _signed_without_typ(ring: KeyRing) -> str:
    """An ES256 token whose header has no ``typ`` (as oidc-provider's ID tokens)."""
    key = ring.signing_key()
    signing_input = f"{_b64({'alg': 'ES256', 'kid': key.kid})}.{_b64(_claims())}"
    assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode(), ec.ECDSA(SHA256())))
    signature = base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return f"{signing_input}.{signature.rstrip(b'=').decode()}"


def test_an_absent_typ_passes_only_where_the_caller_accepts_it(ring: KeyRing) -> None:
    """ID tokens may come without ``typ`` (``ID_TOKEN_TYPES`` lists ""); access tokens may not."""
    token = _signed_without_typ(ring)
    assert _reason(ring, token) == "wrong_typ"
    assert _reason(ring, token, typ=ACCESS_TOKEN_TYPES) == "wrong_typ"
    assert _decode(ring, token, typ=ID_TOKEN_TYPES)["sub"] == "alice"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none", "typ": TYP}, "alg_not_allowed"),
        ({"alg": "HS256", "typ": TYP}, "alg_not_allowed"),
        ({"alg": "ES256", "typ": TYP, "kid": "nope"}, "unknown_kid"),
        (
            {"alg": "ES256", "typ": TYP, "jku": "https://evil.example/jwks"},
            "forbidden_header_param",
        ),
    ],
)
def test_headers_are_checked_before_any_key_is_used(
    ring: KeyRing, header: dict[str, object], reason: str
) -> None:
    token = f"{_b64(header)}.{_b64(_claims())}.c2ln"
    assert _reason(ring, token) == reason


def test_alg_of_another_key_type_is_refused(ring: KeyRing) -> None:
    kid = ring.signing_key().kid
    token = f"{_b64({'alg': 'RS256', 'typ': TYP, 'kid': kid})}.{_b64(_claims())}.c2ln"
    assert _reason(ring, token) == "alg_key_mismatch"


def test_a_tampered_payload_fails_the_signature(ring: KeyRing) -> None:
    header, _, signature = encode_token(ring.signing_key(), _claims(), TYP).split(".")
    forged = f"{header}.{_b64(_claims(sub='mallory'))}.{signature}"
    assert _reason(ring, forged) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.e30.c2ln", "W10.e30.c2ln", "e30.e30.a", "x" * 9000],
)
def test_malformed_tokens_are_refused(ring: KeyRing, token: str) -> None:
    assert _reason(ring, token) in {"malformed", "wrong_typ"}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_character_change_is_refused(ring: KeyRing, data: st.DataObject) -> None:
    """No other spelling of a token passes, not even one that decodes to the same bytes."""
    token = encode_token(ring.signing_key(), _claims(), TYP)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCabc0129-_.=QRgw"))
    mutated = token[:index] + replacement + token[index + 1 :]
    if mutated == token:
        return
    with pytest.raises(TokenError):
        _decode(ring, mutated)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_only_the_canonical_spelling_of_the_signature_is_accepted(ring: KeyRing) -> None:
    """The review's 16 spellings of one ES256 token: its last character's 4 unused bits."""
    token = encode_token(ring.signing_key(), _claims(), TYP)
    signature = token.rsplit(".", 1)[1]
    assert len(signature) % 4 == 2  # 64 bytes: the last character carries 4 unused bits
    last = _ALPHABET.index(signature[-1])
    spellings = [token[:-1] + _ALPHABET[(last & 0b110000) | low] for low in range(16)]
    for spelling in spellings:
        if spelling != token:
            assert _reason(ring, spelling) == "malformed"
    assert _decode(ring, token)["sub"] == "alice"


def test_a_deeply_nested_header_is_malformed_not_a_crash(ring: KeyRing) -> None:
    """5,000 nested ``[`` made json.loads raise RecursionError (a 500 at both services)."""
    header = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode()
    assert _reason(ring, f"{header}.e30.c2ln") == "malformed"


@pytest.mark.parametrize("payload", ["\u00e9t\u00e9", "e30\u2028", "e30\udcff"])
def test_a_non_ascii_segment_is_malformed_not_a_crash(ring: KeyRing, payload: str) -> None:
    """A non-ASCII payload behind a valid header made the signing input raise
    UnicodeEncodeError (a 500 at both services)."""
    header, _, signature = encode_token(ring.signing_key(), _claims(), TYP).split(".")
    assert _reason(ring, f"{header}.{payload}.{signature}") == "malformed"
    assert _reason(ring, f"{header}.e30.{signature}{payload}") == "malformed"
