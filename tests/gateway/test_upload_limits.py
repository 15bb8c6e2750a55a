"""The gateway refuses at upload what the parser would refuse as too large (issue 11 item 12).

The limits are the shared ones of ``schemas.formats``, at their production defaults here.
"""

from __future__ import annotations

import pytest
from gateway_testing import Gateway, error_body

from gateway import GatewaySettings
from schemas import MAX_DOCUMENT_BYTES, MAX_TEXT_CHARS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FIVE_MB = 5_000_000


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    """The test gateway, with the default per-file limit and room for a few large files."""
    return gateway_settings.model_copy(
        update={"max_upload_bytes": MAX_DOCUMENT_BYTES, "max_request_bytes": 4 * FIVE_MB}
    )


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("notes.txt", "text/plain"), ("notes.md", "text/markdown"), ("rows.csv", "text/csv")],
)
async def test_a_5_mb_text_file_is_413_with_the_parsers_limit_and_nothing_is_stored(
    gateway: Gateway, filename: str, content_type: str
) -> None:
    response = await gateway.upload([(filename, content_type, b"a" * FIVE_MB)])
    body = await error_body(response, 413, "too_large")
    assert f"larger than {MAX_TEXT_CHARS:,} bytes, the limit for {content_type}" in body["detail"]
    assert await gateway.all_jobs() == []
    assert gateway.blob_files() == []


async def test_a_text_file_at_the_limit_and_a_5_mb_pdf_are_accepted(gateway: Gateway) -> None:
    text = b"a" * MAX_TEXT_CHARS
    pdf = b"%PDF-1.4\n" + b" " * FIVE_MB
    response = await gateway.upload(
        [("notes.txt", "text/plain", text), ("big.pdf", "application/pdf", pdf)]
    )
    assert response.status == 202, await response.text()
