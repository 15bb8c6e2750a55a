"""The gateway client against a gateway test peer: uploads, errors, token renewal, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.base_protocol import BaseProtocol

from sealflow.client import (
    ApiError,
    Authenticator,
    ClientSettings,
    GatewayClient,
    LoginRequired,
    TransportError,
    UploadError,
    iter_events,
)


@pytest.fixture
async def gateway(identity_peer, settings: ClientSettings, cache) -> AsyncIterator[GatewayClient]:
    cache.save(identity_peer.token_set(expires_at=time.time() + 600))
    async with aiohttp.ClientSession() as http:
        yield GatewayClient(settings, http, Authenticator(settings, http), poll_interval=0)


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Notes\n\n" + b"harbour words " * 20_000)
    return path


async def test_upload_streams_the_file_with_a_length_and_progress(
    gateway, gateway_peer, document
) -> None:
    seen: list[int] = []
    job = await gateway.upload(document, seen.append)
    assert job.state == "queued"
    assert job.filename == "notes.md"
    [upload] = gateway_peer.uploads
    assert upload["data"] == document.read_bytes()
    assert upload["content_type"] == "text/markdown"
    assert upload["content_length"] is not None
    assert upload["chunked"] is None
    assert int(upload["content_length"]) > document.stat().st_size
    assert seen[0] == 0
    assert seen[-1] == document.stat().st_size
    assert len(seen) > 2
    assert seen == sorted(seen)


async def test_an_empty_file_uploads(gateway, gateway_peer, tmp_path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    await gateway.upload(empty)
    assert gateway_peer.uploads[0]["data"] == b""


async def test_a_refused_upload_is_the_gateways_one_line_error(gateway, tmp_path) -> None:
    blob = tmp_path / "tool.bin"
    blob.write_bytes(b"\x00\x01")
    with pytest.raises(ApiError) as caught:
        await gateway.upload(blob)
    assert caught.value.status == 415
    assert str(caught.value) == (
        "gateway answered 415 unsupported_type: application/octet-stream is not accepted"
    )


async def test_an_unreadable_file_fails_before_sending(gateway, gateway_peer, tmp_path) -> None:
    with pytest.raises(UploadError, match="cannot read"):
        await gateway.upload(tmp_path / "missing.md")
    assert gateway_peer.uploads == []


async def test_a_rejected_token_is_renewed_once_and_the_call_retried(
    gateway, gateway_peer, identity_peer, cache, document
) -> None:
    stale = cache.load().access_token
    gateway_peer.refuse.add(stale)
    job = await gateway.upload(document)
    assert job.job_id in gateway_peer.jobs
    assert identity_peer.refreshes == 1
    assert gateway_peer.seen_tokens[0] == stale
    assert gateway_peer.seen_tokens[1] == cache.load().access_token != stale
    # the refused attempt was answered before its body was read; the retry sent it whole
    [upload] = gateway_peer.uploads
    assert upload["data"] == document.read_bytes()


async def test_a_second_401_after_renewal_says_run_login(
    gateway, gateway_peer, identity_peer
) -> None:
    gateway_peer.refuse_all = True
    with pytest.raises(
        LoginRequired, match=r"even after renewing it \(token expired\); run sealflow login"
    ):
        await gateway.list_jobs()
    assert identity_peer.refreshes == 1


async def test_list_get_and_result(gateway, gateway_peer, document) -> None:
    job = await gateway.upload(document)
    page = await gateway.list_jobs(state="queued", all_owners=True, limit=10)
    assert [view.job_id for view in page.jobs] == [job.job_id]
    assert gateway_peer.list_params[-1] == {"limit": "10", "state": "queued", "all": "true"}
    detail = await gateway.get_job(job.job_id)
    assert detail.filename == "notes.md"
    assert detail.history[0].state == "queued"
    with pytest.raises(ApiError, match="409 not_ready: job is queued"):
        await gateway.result(job.job_id)
    final = await gateway.wait(job.job_id)
    assert final.state == "done"
    result = await gateway.result(job.job_id)
    assert result.text.startswith("# Notes")
    assert result.chunks[0].index == 0


async def test_an_unknown_job_is_not_found(gateway) -> None:
    with pytest.raises(ApiError, match="404 not_found: no such job"):
        await gateway.get_job("f" * 32)
    with pytest.raises(ApiError, match="1 to 64 characters"):
        await gateway.get_job("x" * 65)


async def test_wait_follows_the_event_stream(gateway, gateway_peer, document) -> None:
    job = await gateway.upload(document)
    states: list[str] = []
    final = await gateway.wait(job.job_id, lambda view: states.append(view.state))
    assert final.state == "done"
    assert states == ["queued", "processing", "done"]
    assert gateway_peer.events_requests == 1


async def test_wait_reports_a_failed_job(gateway, gateway_peer, document) -> None:
    gateway_peer.states_after_upload = ["processing", "failed"]
    job = await gateway.upload(document)
    final = await gateway.wait(job.job_id)
    assert final.state == "failed"
    assert final.error_reason == "parse_failed"


async def test_wait_falls_back_to_polling_without_events(gateway, gateway_peer, document) -> None:
    gateway_peer.events_enabled = False
    job = await gateway.upload(document)
    states: list[str] = []
    final = await gateway.wait(job.job_id, lambda view: states.append(view.state))
    assert final.state == "done"
    assert states == ["processing", "done"]
    assert gateway_peer.events_requests == 1


async def test_an_unreachable_gateway_is_one_line(identity_peer, settings, cache) -> None:
    cache.save(identity_peer.token_set(expires_at=time.time() + 600))
    offline = settings.model_copy(update={"gateway_url": "http://127.0.0.1:9"})
    async with aiohttp.ClientSession() as http:
        client = GatewayClient(offline, http, Authenticator(offline, http))
        with pytest.raises(
            TransportError, match=r"^cannot reach the gateway at http://127.0.0.1:9: cannot connect"
        ):
            await client.list_jobs()


def _reader(data: bytes) -> aiohttp.StreamReader:
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(BaseProtocol(loop), limit=2**16, loop=loop)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_sse_parsing() -> None:
    stream = b": hello\n\nevent: state\ndata: a\ndata: b\nid: 7\n\ndata:plain\n\nevent: x\n\n"
    events = [event async for event in iter_events(_reader(stream))]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("state", "a\nb", "7"),
        ("message", "plain", "7"),
    ]  # the last id persists


async def test_an_oversized_event_is_refused() -> None:
    stream = b"".join(b"data: " + b"x" * 1000 + b"\n" for _ in range(20)) + b"\n"
    with pytest.raises(TransportError, match="larger than"):
        [event async for event in iter_events(_reader(stream), max_bytes=10_000)]


async def test_a_refused_client_credentials_token_names_the_secret(
    identity_peer, gateway_peer, script_settings
) -> None:
    gateway_peer.refuse_all = True
    async with aiohttp.ClientSession() as http:
        client = GatewayClient(script_settings, http, Authenticator(script_settings, http))
        with pytest.raises(
            LoginRequired, match="check SEALFLOW_CLIENT_ID and SEALFLOW_CLIENT_SECRET"
        ):
            await client.list_jobs()


async def test_a_file_that_shrinks_while_sent_is_an_upload_error(
    gateway, gateway_peer, document
) -> None:
    def truncate_after_first_chunk(sent: int) -> None:
        if sent > 0:
            document.write_bytes(b"short")

    with pytest.raises(UploadError, match="shrank while it was being uploaded"):
        await gateway.upload(document, truncate_after_first_chunk)
    assert gateway_peer.jobs == {}
