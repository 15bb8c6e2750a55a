"""The gateway's REST API as the CLI uses it: upload, list, get, result, and wait for the end.

Every call carries a bearer token from :class:`Authenticator`; a 401 renews the token once and
retries, and a second 401 means the user has to sign in again. Error bodies
``{"error", "detail"}`` become :class:`ApiError` with that text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from multidict import CIMultiDict
from pydantic import BaseModel, ValidationError

from sealflow.client.auth import Authenticator
from sealflow.client.errors import ApiError, LoginRequired, TransportError
from sealflow.client.http import read_body, read_json, stream_timeout, transport_errors
from sealflow.client.models import (
    JobDetail,
    JobPage,
    JobResult,
    JobView,
    UploadedJob,
    UploadResponse,
)
from sealflow.client.payload import FilePayload
from sealflow.client.settings import ClientSettings
from sealflow.client.sse import iter_events

__all__ = ["MIN_PREFIX", "POLL_INTERVAL", "GatewayClient"]

POLL_INTERVAL: Final = 1.0
# A prefix shorter than this would match too much to be worth a lookup; a job id is 32 hex digits.
MIN_PREFIX: Final = 4
_FULL_ID_LENGTH: Final = 32
_PREFIX_PAGE: Final = 200
_PREFIX_MAX_PAGES: Final = 50
_MAX_ERROR_BODY: Final = 64 * 1024
_MAX_DETAIL: Final = 500
_log = structlog.get_logger("sealflow.client.gateway")

M = TypeVar("M", bound=BaseModel)
BodyFactory = Callable[[], Any]


def _api_error(status: int, reason: str | None, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        detail = body.get("detail")
        text = " ".join(detail.split())[:_MAX_DETAIL] if isinstance(detail, str) else ""
        return ApiError(status, body["error"][:100], text)
    return ApiError(status, "http_error", reason or "no error body")


def _job_path(job_id: str, suffix: str = "") -> str:
    if not job_id or len(job_id) > 64:
        raise ApiError(400, "bad_request", "a job id has 1 to 64 characters")
    return f"/api/jobs/{quote(job_id, safe='')}{suffix}"


class GatewayClient:
    """Calls to ``SEALFLOW_GATEWAY_URL`` with timeouts, bounded bodies and one-line errors."""

    def __init__(
        self,
        settings: ClientSettings,
        http: aiohttp.ClientSession,
        auth: Authenticator,
        *,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.settings = settings
        self.http = http
        self.auth = auth
        self.poll_interval = poll_interval

    @contextlib.asynccontextmanager
    async def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A successful (< 400) response, after at most one token renewal."""
        url = f"{self.settings.gateway_url}{path}"
        token = await self.auth.access_token()
        for attempt in (1, 2):
            request_headers = CIMultiDict(headers or {})
            request_headers["Authorization"] = f"Bearer {token}"
            request_headers.setdefault("Accept", "application/json")
            options: dict[str, Any] = {"params": params, "headers": request_headers}
            if body is not None:
                options["data"] = body()
            if timeout is not None:
                options["timeout"] = timeout
            with transport_errors(f"cannot reach the gateway at {self.settings.gateway_url}"):
                async with self.http.request(method, url, **options) as response:
                    if response.status < 400:
                        yield response
                        return
                    raw = await read_body(response, _MAX_ERROR_BODY)
                    error = _api_error(response.status, response.reason, raw)
            if error.status != 401:
                raise error
            if attempt == 2:
                reason = error.detail or error.error
                remedy = (
                    "check SEALFLOW_CLIENT_ID and SEALFLOW_CLIENT_SECRET"
                    if self.auth.uses_client_credentials
                    else "run sealflow login"
                )
                raise LoginRequired(
                    f"the gateway refused the token even after renewing it ({reason}); {remedy}"
                )
            _log.debug("gateway_rejected_token", detail=error.detail)
            token = await self.auth.renew(token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _json(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: BodyFactory | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> M:
        what = f"the gateway ({method} {path})"
        async with self._open(method, path, params=params, body=body, timeout=timeout) as response:
            with transport_errors(f"reading the answer of {what}"):
                raw = await read_body(response)
        try:
            return model.model_validate(read_json(raw, what))
        except ValidationError as error:
            raise TransportError(
                f"{what} answered a body this client does not understand"
            ) from error

    # -- the routes ----------------------------------------------------------------------

    async def upload(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> UploadedJob:
        """``POST /api/jobs`` with ``path`` streamed as the ``file`` part."""
        FilePayload(path)  # fails early, before a token is fetched, if the file is unreadable

        def body() -> aiohttp.MultipartWriter:
            writer = aiohttp.MultipartWriter("form-data")
            part = FilePayload(path, progress=progress)
            part.set_content_disposition("form-data", name="file", filename=path.name)
            writer.append_payload(part)
            return writer

        answer = await self._json(
            UploadResponse, "POST", "/api/jobs", body=body, timeout=stream_timeout(self.settings)
        )
        return answer.jobs[0]

    async def list_jobs(
        self,
        *,
        state: str | None = None,
        all_owners: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """``GET /api/jobs``: own jobs (every owner's with ``all_owners``, for admins)."""
        params = {"limit": str(limit)}
        if state:
            params["state"] = state
        if all_owners:
            params["all"] = "true"
        if cursor:
            params["cursor"] = cursor
        return await self._json(JobPage, "GET", "/api/jobs", params=params)

    async def resolve_job_id(self, text: str, *, all_owners: bool = False) -> str:
        """The one job whose id starts with ``text``, so that a short id from a table round-trips.

        A full-length id is taken as it is; a prefix is looked up in the caller's jobs (every
        owner's with ``all_owners``), at most ``_PREFIX_MAX_PAGES`` pages deep.
        """
        wanted = text.strip().lower()
        if len(wanted) >= _FULL_ID_LENGTH:
            return wanted
        if len(wanted) < MIN_PREFIX:
            raise ApiError(400, "bad_request", f"give at least {MIN_PREFIX} characters of a job id")
        matches: list[str] = []
        cursor: str | None = None
        for _ in range(_PREFIX_MAX_PAGES):
            page = await self.list_jobs(all_owners=all_owners, limit=_PREFIX_PAGE, cursor=cursor)
            matches.extend(job.job_id for job in page.jobs if job.job_id.startswith(wanted))
            cursor = page.next
            if len(matches) > 1 or cursor is None:
                break
        if not matches:
            raise ApiError(404, "not_found", f"no job of yours has an id starting with {wanted}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5])
            raise ApiError(409, "ambiguous_id", f"{wanted} starts several job ids: {shown}")
        return matches[0]

    async def get_job(self, job_id: str) -> JobDetail:
        """``GET /api/jobs/{id}``."""
        return await self._json(JobDetail, "GET", _job_path(job_id))

    async def result(self, job_id: str) -> JobResult:
        """``GET /api/jobs/{id}/result`` (409 ``not_ready`` while the job is not done)."""
        return await self._json(JobResult, "GET", _job_path(job_id, "/result"))

    async def wait(
        self, job_id: str, on_update: Callable[[JobView], None] | None = None
    ) -> JobView:
        """Wait for ``job_id`` to reach a final state: its event stream, else polling.

        It has no deadline of its own (a job may take long); callers bound it, as
        ``sealflow upload --wait`` does. A stream silent for longer than ``http_timeout``
        (the gateway sends heartbeats) falls back to polling.
        """
        try:
            view = await self._follow_events(job_id, on_update)
        except ApiError as error:
            if error.status not in {404, 405, 406, 501}:
                raise
            view = None
        except TransportError as error:
            _log.info("event_stream_failed", job=job_id, error=str(error))
            view = None
        if view is not None and view.final:
            return view
        return await self._poll(job_id, on_update)

    async def _follow_events(
        self, job_id: str, on_update: Callable[[JobView], None] | None
    ) -> JobView | None:
        """Read ``/events`` until a final state; None when the stream is not usable."""
        last: JobView | None = None
        async with self._open(
            "GET",
            _job_path(job_id, "/events"),
            headers={"Accept": "text/event-stream"},
            timeout=stream_timeout(self.settings),
        ) as response:
            if response.content_type != "text/event-stream":
                return None
            with transport_errors("reading the job's event stream"):
                async for event in iter_events(response.content):
                    if event.event != "state":
                        continue
                    try:
                        last = JobView.model_validate_json(event.data)
                    except ValidationError:
                        _log.warning("bad_state_event", job=job_id)
                        continue
                    if on_update is not None:
                        on_update(last)
                    if last.final:
                        return last
        return last

    async def _poll(self, job_id: str, on_update: Callable[[JobView], None] | None) -> JobView:
        previous: str | None = None
        while True:
            view = await self.get_job(job_id)
            if view.state != previous and on_update is not None:
                on_update(view)
            previous = view.state
            if view.final:
                return view
            await asyncio.sleep(self.poll_interval)
