"""The HTTP gateway: the REST API under ``/api`` (bearer tokens from the identity provider),
uploads that become sealed jobs, job status, live events, results and search (DESIGN §1, §2).

The package exports what other packages and tests use: the application and its settings, the
keys under which a running application keeps its parts, and the verified caller. Everything
else is imported from its module (``gateway.errors``, ``gateway.hub``, ``gateway.submission``…).
"""

from __future__ import annotations

from gateway.app import all_operations, create_app
from gateway.appkeys import (
    AUDIT_KEY,
    AUTH_KEY,
    HUB_KEY,
    ISSUER_KEY,
    PUBLISHER_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.auth import PRINCIPAL_KEY, Authenticator, Principal
from gateway.issuer import IssuerError, IssuerKeys
from gateway.settings import GatewaySettings

__all__ = [
    "AUDIT_KEY",
    "AUTH_KEY",
    "HUB_KEY",
    "ISSUER_KEY",
    "PRINCIPAL_KEY",
    "PUBLISHER_KEY",
    "RUNTIME_KEY",
    "SETTINGS_KEY",
    "STORE_KEY",
    "Authenticator",
    "GatewaySettings",
    "IssuerError",
    "IssuerKeys",
    "Principal",
    "all_operations",
    "create_app",
]
