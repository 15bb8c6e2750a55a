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
from keys.errors import JWKError, KeyFileError, KeyMaterialError, KeyRingError, TrustStoreError
from keys.jwk import PublicJWK, load_public_jwk, public_jwk, thumbprint
from keys.keyring import KeyRing
from keys.records import KEY_STATES, KeyRecord, KeyState, SigningKey, VerificationKey
from keys.settings import KeySettings
from keys.signature import sign, verify
from keys.truststore import (
    DEFAULT_REFRESH_INTERVAL,
    TRUST_FILE,
    TrustStore,
    TrustStoreFile,
    write_trust_store,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_REFRESH_INTERVAL",
    "KEY_STATES",
    "TRUST_FILE",
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
    "write_trust_store",
]
