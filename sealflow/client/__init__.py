"""The Sealflow API client behind ``sealflow login/upload/jobs/result/token``.

Settings from ``SEALFLOW_GATEWAY_URL``, ``SEALFLOW_ISSUER``, ``SEALFLOW_CLIENT_ID`` (and
``SEALFLOW_CLIENT_SECRET`` for scripts); tokens cached privately in the user's config dir.
"""

from __future__ import annotations

from sealflow.client.auth import Authenticator
from sealflow.client.cache import MAX_CACHE_BYTES, TokenCache, TokenSet
from sealflow.client.device import SLOW_DOWN_STEP, DeviceFlow
from sealflow.client.errors import (
    ApiError,
    CacheError,
    ClientError,
    DeviceFlowError,
    LoginRequired,
    OAuthError,
    TransportError,
    UploadError,
)
from sealflow.client.gateway import POLL_INTERVAL, GatewayClient
from sealflow.client.http import new_session, request_timeout, stream_timeout
from sealflow.client.models import (
    FINAL_STATES,
    Chunk,
    HistoryEntry,
    JobDetail,
    JobLinks,
    JobPage,
    JobResult,
    JobView,
    UploadedJob,
    UploadResponse,
)
from sealflow.client.oidc import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    OidcClient,
    ProviderMetadata,
    TokenResponse,
    UserInfo,
)
from sealflow.client.payload import FilePayload, guess_content_type
from sealflow.client.settings import DEFAULT_SCOPE, ClientSettings
from sealflow.client.sse import SseEvent, iter_events

__all__ = [
    "DEFAULT_SCOPE",
    "DEVICE_CODE_GRANT",
    "FINAL_STATES",
    "MAX_CACHE_BYTES",
    "POLL_INTERVAL",
    "SLOW_DOWN_STEP",
    "ApiError",
    "Authenticator",
    "CacheError",
    "Chunk",
    "ClientError",
    "ClientSettings",
    "DeviceAuthorization",
    "DeviceFlow",
    "DeviceFlowError",
    "FilePayload",
    "GatewayClient",
    "HistoryEntry",
    "JobDetail",
    "JobLinks",
    "JobPage",
    "JobResult",
    "JobView",
    "LoginRequired",
    "OAuthError",
    "OidcClient",
    "ProviderMetadata",
    "SseEvent",
    "TokenCache",
    "TokenResponse",
    "TokenSet",
    "TransportError",
    "UploadError",
    "UploadResponse",
    "UploadedJob",
    "UserInfo",
    "guess_content_type",
    "iter_events",
    "new_session",
    "request_timeout",
    "stream_timeout",
]
