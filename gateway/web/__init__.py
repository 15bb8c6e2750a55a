"""The gateway's browser side (a backend-for-frontend): sign-in with the authorization code
and PKCE, server-side sessions behind an encrypted cookie, and server-rendered pages."""

from __future__ import annotations

from gateway.web.api import BRIDGED_OPERATIONS, SESSION_API_PREFIX, SessionExpired
from gateway.web.browser import SignedIn, signed_in
from gateway.web.context import WEB_KEY, WebContext
from gateway.web.csrf import CSRF_FIELD, CSRF_HEADER, CsrfRejected
from gateway.web.navigation import login_path, safe_return_path
from gateway.web.oidc import Discovery, OidcClient, OidcError, TokenResponse, s256
from gateway.web.session_key import SESSION_KEY_FILE, SessionSecretError, load_session_secret
from gateway.web.sessions import BoundedStore, PendingLogin, SessionStores, TokenSet, WebSession
from gateway.web.settings import WEB_CLIENT_ID, WEB_GRANT_TYPES, WEB_SCOPE, WebSettings
from gateway.web.setup import SESSION_COOKIE, setup_web

__all__ = [
    "BRIDGED_OPERATIONS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_API_PREFIX",
    "SESSION_COOKIE",
    "SESSION_KEY_FILE",
    "WEB_CLIENT_ID",
    "WEB_GRANT_TYPES",
    "WEB_KEY",
    "WEB_SCOPE",
    "BoundedStore",
    "CsrfRejected",
    "Discovery",
    "OidcClient",
    "OidcError",
    "PendingLogin",
    "SessionExpired",
    "SessionSecretError",
    "SessionStores",
    "SignedIn",
    "TokenResponse",
    "TokenSet",
    "WebContext",
    "WebSession",
    "WebSettings",
    "load_session_secret",
    "login_path",
    "s256",
    "safe_return_path",
    "setup_web",
    "signed_in",
]
