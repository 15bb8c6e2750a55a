"""Key material: generation, RFC 7638 ``kid``s, JWK/JWKS, key rings with rotation, trust stores.

Private keys stay in their service's ring directory; receivers only ever see public JWKs.
"""

from __future__ import annotations

from keys.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Algorithm,
    PrivateKey,
    PublicKey,
    algorithm_for_key,
    generate_private_key,
)
from keys.errors import (
    JWKError,
    KeyFileError,
    KeyMaterialError,
    KeyRingError,
    TokenError,
    TrustStoreError,
)
from keys.jwk import PublicJWK, load_public_jwk, public_jwk, thumbprint
from keys.keyring import KeyRing
from keys.records import KEY_STATES, KeyRecord, KeyState, SigningKey, VerificationKey
from keys.settings import KeySettings
from keys.signature import sign, verify
from keys.tokens import (
    ACCESS_TOKEN_TYP,
    ID_TOKEN_TYP,
    MAX_ACCESS_TOKEN_LIFETIME,
    AccessClaims,
    TokenSigner,
    verify_access_token,
    verify_id_token,
)
from keys.truststore import (
    DEFAULT_REFRESH_INTERVAL,
    TRUST_FILE,
    TrustStore,
    TrustStoreFile,
    write_trust_store,
)

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_REFRESH_INTERVAL",
    "ID_TOKEN_TYP",
    "KEY_STATES",
    "MAX_ACCESS_TOKEN_LIFETIME",
    "TRUST_FILE",
    "AccessClaims",
    "Algorithm",
    "JWKError",
    "KeyFileError",
    "KeyMaterialError",
    "KeyRecord",
    "KeyRing",
    "KeyRingError",
    "KeySettings",
    "KeyState",
    "PrivateKey",
    "PublicJWK",
    "PublicKey",
    "SigningKey",
    "TokenError",
    "TokenSigner",
    "TrustStore",
    "TrustStoreError",
    "TrustStoreFile",
    "VerificationKey",
    "algorithm_for_key",
    "generate_private_key",
    "load_public_jwk",
    "public_jwk",
    "sign",
    "thumbprint",
    "verify",
    "verify_access_token",
    "verify_id_token",
    "write_trust_store",
]
