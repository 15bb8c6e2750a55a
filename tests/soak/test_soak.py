"""Soak: jobs through the worker, parser and audit processes with forgeries and SIGKILLs injected
at seeded random moments; nothing lost, nothing duplicated, every forgery rejected exactly once.

The default suite runs 200 jobs; ``-m slow`` runs the full 10,000 (``bench/soak.py`` prints the
same figures as a script). Broker restarts are left to ``tests/faults/`` here, because other
suites share the broker; ``bench/soak.py --broker-restarts N`` adds them to a soak run by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from soak import SoakConfig, SoakReport, run_soak

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _check(report: SoakReport) -> None:
    summary = "\n".join(report.lines())
    assert report.done + report.failed == report.jobs, summary
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.forgeries == report.rejected_dead_letters, summary
    assert report.forgeries == report.rejected_audit_records, summary
    assert report.wrong_reasons == [], summary
    assert report.unexpected_dead_letters == [], summary
    assert report.gateway_open_failures == 0, summary
    assert report.audit_verified, summary
    assert report.exit_codes == {"worker": 0, "parser": 0, "audit": 0}, summary
    assert report.ok, summary


@pytest.mark.timeout(600)
async def test_soak_200_jobs_with_forgeries_and_daemon_kills(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path
) -> None:
    config = SoakConfig(jobs=200, seed=6, forgeries=12, kills=3, timeout=480)
    report = await run_soak(config, amqp_url=amqp_url, namespace=namespace, work_dir=tmp_path)
    assert report.forgeries == 12
    assert {kind for kind in report.injected} >= {"unknown_kid", "bad_signature", "tampered_body"}
    assert len(report.kills) == 3
    _check(report)


@pytest.mark.slow
@pytest.mark.timeout(4000)
async def test_soak_10000_jobs(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path
) -> None:
    config = SoakConfig(jobs=10_000, seed=6, timeout=3600)
    report = await run_soak(config, amqp_url=amqp_url, namespace=namespace, work_dir=tmp_path)
    assert set(report.injected) == {"unknown_kid", "bad_signature", "tampered_body", "replay"}
    _check(report)
    for service, growth in report.rss_growth().items():
        if growth is not None:
            assert growth[2] <= 0.10, (service, growth)
