"""Key material: generation, RFC 7638 ``kid``s, JWK/JWKS, key rings with rotation, trust bundles.

Private keys stay in their service's ring directory; receivers only ever see public JWKs, in
a trust bundle signed by the operator root key that every daemon pins.
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
from keys.bundle import (
    ROOT_KEY_FILE,
    ROOT_PUBLIC_FILE,
    TrustBundle,
    create_root_key,
    load_root_public,
    load_root_signer,
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
from keys.service_tokens import (
    MAX_SERVICE_TOKEN_LIFETIME,
    SERVICE_TOKEN_TYP,
    ServiceClaims,
    issue_service_token,
    request_digest,
    verify_service_token,
)
from keys.settings import KeySettings
from keys.signature import sign, verify
from keys.tokens import (
    ACCESS_TOKEN_TYP,
    ACCESS_TOKEN_TYPES,
    ID_TOKEN_TYP,
    ID_TOKEN_TYPES,
    MAX_ACCESS_TOKEN_LIFETIME,
    AccessClaims,
    AccessTokenPolicy,
    TokenSigner,
    verify_access_token,
    verify_id_token,
)
from keys.trustfile import (
    DEFAULT_REFRESH_INTERVAL,
    TRUST_FILE,
    BundleSource,
    TrustStoreFile,
    issue_trust_bundle,
    load_trust_store,
    write_trust_store,
)
from keys.truststore import TrustStore

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ACCESS_TOKEN_TYPES",
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_REFRESH_INTERVAL",
    "ID_TOKEN_TYP",
    "ID_TOKEN_TYPES",
    "KEY_STATES",
    "MAX_ACCESS_TOKEN_LIFETIME",
    "MAX_SERVICE_TOKEN_LIFETIME",
    "ROOT_KEY_FILE",
    "ROOT_PUBLIC_FILE",
    "SERVICE_TOKEN_TYP",
    "TRUST_FILE",
    "AccessClaims",
    "AccessTokenPolicy",
    "Algorithm",
    "BundleSource",
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
    "ServiceClaims",
    "SigningKey",
    "TokenError",
    "TokenSigner",
    "TrustBundle",
    "TrustStore",
    "TrustStoreError",
    "TrustStoreFile",
    "VerificationKey",
    "algorithm_for_key",
    "create_root_key",
    "generate_private_key",
    "issue_service_token",
    "issue_trust_bundle",
    "load_public_jwk",
    "load_root_public",
    "load_root_signer",
    "load_trust_store",
    "public_jwk",
    "request_digest",
    "sign",
    "thumbprint",
    "verify",
    "verify_access_token",
    "verify_id_token",
    "verify_service_token",
    "write_trust_store",
]
