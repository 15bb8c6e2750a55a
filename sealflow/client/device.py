"""The device authorization grant's polling loop (RFC 8628 §3.4-3.5) as a small state machine.

``authorization_pending`` keeps polling at the current interval, ``slow_down`` adds 5 seconds
to it for good, ``expired_token`` and ``access_denied`` end the flow, and a poll the provider
could not answer backs off exponentially (§3.5) before giving up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

import structlog

from sealflow.client.errors import DeviceFlowError, OAuthError, TransportError
from sealflow.client.oidc import DEVICE_CODE_GRANT, DeviceAuthorization, OidcClient, TokenResponse

__all__ = ["SLOW_DOWN_STEP", "DeviceFlow"]

SLOW_DOWN_STEP: Final = 5
_MIN_INTERVAL: Final = 1
_MAX_INTERVAL: Final = 60
_MAX_TRANSPORT_FAILURES: Final = 5
_log = structlog.get_logger("sealflow.client.device")

Sleep = Callable[[float], Awaitable[None]]


class DeviceFlow:
    """Start a device authorization and poll the token endpoint until it is decided."""

    def __init__(
        self,
        oidc: OidcClient,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.oidc = oidc
        self._sleep = sleep
        self._clock = clock

    async def start(self, scope: str) -> DeviceAuthorization:
        """Ask for a device code and a user code."""
        return await self.oidc.device_authorization(scope)

    async def poll(self, authorization: DeviceAuthorization) -> TokenResponse:
        """Poll until the user approves (tokens), denies, or the code expires (errors)."""
        interval = max(authorization.interval, _MIN_INTERVAL)
        deadline = self._clock() + authorization.expires_in
        failures = 0
        form = {"grant_type": DEVICE_CODE_GRANT, "device_code": authorization.device_code}
        while True:
            await self._sleep(interval)
            if self._clock() >= deadline:
                raise DeviceFlowError(
                    "expired_token", "the code expired before it was approved; run sealflow login"
                )
            try:
                return await self.oidc.token(form)
            except TransportError as error:
                failures += 1
                if failures > _MAX_TRANSPORT_FAILURES:
                    raise
                interval = min(interval * 2, _MAX_INTERVAL)
                _log.warning("device_poll_failed", error=str(error), next_interval=interval)
                continue
            except OAuthError as error:
                failures = 0
                if error.error == "authorization_pending":
                    continue
                if error.error == "slow_down":
                    interval += SLOW_DOWN_STEP
                    _log.debug("device_poll_slow_down", interval=interval)
                    continue
                if error.error == "expired_token":
                    raise DeviceFlowError(
                        "expired_token",
                        "the code expired before it was approved; run sealflow login",
                    ) from error
                if error.error == "access_denied":
                    raise DeviceFlowError(
                        "access_denied", "the sign-in was denied at the identity provider"
                    ) from error
                raise DeviceFlowError(error.error, str(error)) from error
