"""The typed keys under which the gateway application keeps its parts."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from broker import AuditSink, BrokerSettings, Publisher, ServiceRuntime
from gateway.auth import Authenticator
from gateway.blobkeeper import BlobKeeper
from gateway.hub import EventHub
from gateway.issuer import IssuerKeys
from gateway.quota import JobQuota
from gateway.settings import GatewaySettings
from store import BlobStore, JobStore

__all__ = [
    "AUDIT_KEY",
    "AUTH_KEY",
    "BLOBS_KEY",
    "BLOB_KEEPER_KEY",
    "BROKER_SETTINGS_KEY",
    "HUB_KEY",
    "ISSUER_KEY",
    "PUBLISHER_KEY",
    "QUOTA_KEY",
    "RUNTIME_KEY",
    "SETTINGS_KEY",
    "STORE_KEY",
]

SETTINGS_KEY: Final = web.AppKey("gateway_settings", GatewaySettings)
BROKER_SETTINGS_KEY: Final = web.AppKey("gateway_broker_settings", BrokerSettings)
STORE_KEY: Final = web.AppKey("gateway_store", JobStore)
"""The job store (opened on startup)."""
BLOBS_KEY: Final = web.AppKey("gateway_blobs", BlobStore)
BLOB_KEEPER_KEY: Final = web.AppKey("gateway_blob_keeper", BlobKeeper)
RUNTIME_KEY: Final = web.AppKey("gateway_runtime", ServiceRuntime)
"""The broker runtime (connection, trust, revocations, consumers)."""
PUBLISHER_KEY: Final = web.AppKey("gateway_publisher", Publisher)
"""Seals and publishes as ``gateway`` (set on startup, once the runtime is connected)."""
AUDIT_KEY: Final = web.AppKey("gateway_audit", AuditSink)
HUB_KEY: Final = web.AppKey("gateway_hub", EventHub)
ISSUER_KEY: Final = web.AppKey("gateway_issuer", IssuerKeys)
AUTH_KEY: Final = web.AppKey("gateway_auth", Authenticator)
QUOTA_KEY: Final = web.AppKey("gateway_quota", JobQuota)
"""The per-user quota on jobs in flight, checked at upload."""
