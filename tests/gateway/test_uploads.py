"""Uploads at the door: names, sizes, types and malformed bodies; nothing half-stored."""

from __future__ import annotations

import pytest
from gateway_testing import Gateway, error_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BOUNDARY = "sealflow-test-boundary"


def raw_multipart(parts: list[tuple[bytes, bytes]]) -> bytes:
    """A multipart body from (headers, content) pairs, written by hand to send odd headers."""
    body = b""
    for headers, content in parts:
        body += b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


def file_part(
    filename: bytes, content: bytes, content_type: bytes = b"text/plain"
) -> tuple[bytes, bytes]:
    headers = (
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: " + content_type
    )
    return headers, content


async def post_raw(gateway: Gateway, body: bytes, content_type: str | None = None) -> object:
    headers = dict(gateway.auth())
    headers["Content-Type"] = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    return await gateway.client.post("/api/jobs", data=body, headers=headers)


async def assert_nothing_stored(gateway: Gateway) -> None:
    assert await gateway.all_jobs() == []
    assert gateway.blob_files() == []


async def test_one_upload_answers_202_with_the_job_and_records_it_queued(gateway: Gateway) -> None:
    response = await gateway.upload([("notes.txt", "text/plain", b"hello harbour")])
    assert response.status == 202, await response.text()
    body = await response.json()
    [job] = body["jobs"]
    assert job["filename"] == "notes.txt"
    assert job["state"] == "queued"
    assert job["status_url"] == f"/api/jobs/{job['job_id']}"
    assert response.headers["Location"] == job["status_url"]
    stored = await gateway.store.get(job["job_id"])
    assert stored is not None
    assert stored.owner == "alice"
    assert stored.content_type == "text/plain"
    assert stored.size == len(b"hello harbour")
    assert gateway.blobs.read(stored.blob_sha256, max_bytes=100) == b"hello harbour"


@pytest.mark.parametrize(
    ("raw_name", "stored_name"),
    [
        (b"../../etc/passwd", "passwd"),
        # In a quoted-string a backslash escapes the next character: "\\\\" is one backslash.
        (b"..\\\\..\\\\x.txt", "x.txt"),
        (b"..\\..\\x.txt", "x.txt"),
        (b"/abs/path/notes.txt", "notes.txt"),
        (b"C:\\\\Windows\\\\win.ini", "win.ini"),
        (b"..", "upload"),
        (b"report\xe2\x80\xae.txt", "report.txt"),  # a bidi override is dropped
        (b"tab\there.txt", "tabhere.txt"),
    ],
)
async def test_path_traversal_and_control_characters_never_reach_a_path(
    gateway: Gateway, raw_name: bytes, stored_name: str
) -> None:
    response = await post_raw(gateway, raw_multipart([file_part(raw_name, b"some text")]))
    assert response.status == 202, await response.text()  # type: ignore[attr-defined]
    [job] = (await response.json())["jobs"]  # type: ignore[attr-defined]
    assert job["filename"] == stored_name
    stored = await gateway.store.get(job["job_id"])
    assert stored is not None
    assert stored.filename == stored_name
    root = gateway.settings.data_dir
    assert not (root / "etc").exists()
    assert all(path.is_relative_to(root / "blobs") for path in gateway.blob_files())


async def test_a_raw_nul_in_a_part_header_is_a_malformed_body(gateway: Gateway) -> None:
    response = await post_raw(gateway, raw_multipart([file_part(b"a\x00b.txt", b"text")]))
    await error_body(response, 400, "invalid_upload")  # type: ignore[arg-type]
    await assert_nothing_stored(gateway)


async def test_a_percent_encoded_nul_in_the_file_name_is_removed(gateway: Gateway) -> None:
    headers = (
        b"Content-Disposition: form-data; name=\"file\"; filename*=utf-8''..%2F..%2Fa%00b.txt\r\n"
        b"Content-Type: text/plain"
    )
    response = await post_raw(gateway, raw_multipart([(headers, b"text")]))
    assert response.status == 202, await response.text()  # type: ignore[attr-defined]
    [job] = (await response.json())["jobs"]  # type: ignore[attr-defined]
    assert job["filename"] == "ab.txt"


async def test_a_very_long_file_name_is_cut_keeping_its_extension(gateway: Gateway) -> None:
    part = file_part(b"n" * 5_000 + b".md", b"# hi", b"text/markdown")
    response = await post_raw(gateway, raw_multipart([part]))
    assert response.status == 202  # type: ignore[attr-defined]
    [job] = (await response.json())["jobs"]  # type: ignore[attr-defined]
    assert len(job["filename"]) == 255
    assert job["filename"].endswith(".md")


async def test_over_the_size_limit_is_413_and_nothing_is_stored(gateway: Gateway) -> None:
    big = b"a" * (gateway.settings.max_upload_bytes + 1)
    response = await gateway.upload([("big.txt", "text/plain", big)])
    await error_body(response, 413, "too_large")
    await assert_nothing_stored(gateway)


async def test_an_upload_is_all_or_nothing(gateway: Gateway) -> None:
    big = b"b" * (gateway.settings.max_upload_bytes + 1)
    response = await gateway.upload(
        [("ok.txt", "text/plain", b"fine"), ("big.txt", "text/plain", big)]
    )
    await error_body(response, 413, "too_large")
    await assert_nothing_stored(gateway)
    response = await gateway.upload(
        [("ok.txt", "text/plain", b"fine"), ("x.png", "image/png", b"\x89PNG")]
    )
    await error_body(response, 415, "unsupported_type")
    await assert_nothing_stored(gateway)


async def test_too_many_files_is_413(gateway: Gateway) -> None:
    files = [(f"{n}.txt", "text/plain", f"file {n}".encode()) for n in range(9)]
    response = await gateway.upload(files)
    await error_body(response, 413, "too_large")
    await assert_nothing_stored(gateway)


async def test_several_files_become_several_jobs_in_order(gateway: Gateway) -> None:
    files = [(f"{n}.txt", "text/plain", f"file {n}".encode()) for n in range(3)]
    response = await gateway.upload(files)
    assert response.status == 202
    jobs = (await response.json())["jobs"]
    assert [job["filename"] for job in jobs] == ["0.txt", "1.txt", "2.txt"]
    assert len(await gateway.all_jobs()) == 3


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("x.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("x.exe", "application/octet-stream", b"MZ\x90\x00"),
        ("noext", "application/octet-stream", b"just bytes"),
        ("fake.pdf", "application/pdf", b"<html>not a pdf</html>"),
        ("bin.txt", "text/plain", b"\xff\xfe\x00b\x00i\x00n"),
        ("nul.txt", "text/plain", b"text with a \x00 inside"),
        ("latin1.csv", "text/csv", b"caf\xe9,1\n"),
    ],
)
async def test_a_wrong_type_is_415_and_nothing_is_stored(
    gateway: Gateway, filename: str, content_type: str, data: bytes
) -> None:
    response = await gateway.upload([(filename, content_type, data)])
    await error_body(response, 415, "unsupported_type")
    await assert_nothing_stored(gateway)


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "stored_type"),
    [
        ("doc.pdf", "application/octet-stream", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        ("anon", "application/octet-stream", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
        ("readme.md", None, b"# title", "text/markdown"),
        ("data.json", "text/json", b"{}", "application/json"),
        ("page.html", "text/html; charset=utf-8", b"<p>hi</p>", "text/html"),
    ],
)
async def test_generic_and_alias_types_are_resolved(
    gateway: Gateway, filename: str, content_type: str | None, data: bytes, stored_type: str
) -> None:
    response = await gateway.upload([(filename, content_type, data)])
    assert response.status == 202, await response.text()
    [job] = (await response.json())["jobs"]
    stored = await gateway.store.get(job["job_id"])
    assert stored is not None
    assert stored.content_type == stored_type


async def test_an_empty_file_is_400(gateway: Gateway) -> None:
    response = await gateway.upload([("empty.txt", "text/plain", b"")])
    await error_body(response, 400, "invalid_upload")
    await assert_nothing_stored(gateway)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not multipart at all", None),
        (b"--other-boundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n", None),
        (raw_multipart([file_part(b"a.txt", b"x" * 200)])[:-20], None),
        (raw_multipart([file_part(b"a.txt", b"x")]), "multipart/form-data"),  # no boundary
        (
            raw_multipart([(b'Content-Disposition: form-data; name="note"', b"hello")]),
            None,
        ),
        (
            raw_multipart([(b'Content-Disposition: form-data; name="file"', b"no filename")]),
            None,
        ),
        (b"--" + BOUNDARY.encode() + b"--\r\n", None),
    ],
    ids=[
        "garbage",
        "wrong-boundary",
        "truncated",
        "no-boundary",
        "no-file",
        "no-filename",
        "empty",
    ],
)
async def test_malformed_multipart_is_400_and_nothing_is_stored(
    gateway: Gateway, body: bytes, content_type: str | None
) -> None:
    response = await post_raw(gateway, body, content_type)
    await error_body(response, 400)  # type: ignore[arg-type]
    await assert_nothing_stored(gateway)


async def test_a_body_that_is_not_multipart_is_415(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/jobs", json={"file": "x"}, headers=gateway.auth())
    await error_body(response, 415, "unsupported_type")
    await assert_nothing_stored(gateway)


async def test_a_base64_transfer_encoded_part_is_refused(gateway: Gateway) -> None:
    headers, content = file_part(b"a.txt", b"aGVsbG8=")
    response = await post_raw(
        gateway, raw_multipart([(headers + b"\r\nContent-Transfer-Encoding: base64", content)])
    )
    await error_body(response, 400, "invalid_upload")  # type: ignore[arg-type]
    await assert_nothing_stored(gateway)


async def test_broker_down_at_publish_is_503_and_no_job_remains(gateway: Gateway) -> None:
    await gateway.close_publish_channel()
    response = await gateway.upload([("a.txt", "text/plain", b"never queued")])
    body = await error_body(response, 503, "unavailable")
    assert "nothing was queued" in body["detail"]
    await assert_nothing_stored(gateway)


async def test_a_shared_blob_survives_a_failed_upload_of_the_same_bytes(gateway: Gateway) -> None:
    response = await gateway.upload([("a.txt", "text/plain", b"shared bytes")])
    assert response.status == 202
    [job] = (await response.json())["jobs"]
    stored = await gateway.store.get(job["job_id"])
    assert stored is not None
    await gateway.close_publish_channel()
    response = await gateway.upload([("b.txt", "text/plain", b"shared bytes")])
    await error_body(response, 503, "unavailable")
    assert [j.job_id for j in await gateway.all_jobs()] == [job["job_id"]]
    assert gateway.blobs.read(stored.blob_sha256, max_bytes=100) == b"shared bytes"
