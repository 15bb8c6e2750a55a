"""The pipeline on a 3-node RabbitMQ cluster with quorum queues, one node stopped mid-run:
lost 0, duplicated 0, every job final, the audit chain intact (issue 10 §7, DESIGN §8).

The cluster is started and stopped by the test (its own node names, ports, data directories
and cookie; the machine's broker is not touched). The topology is declared through node 1, so
node 1 leads every quorum queue; the daemons and the submitter talk to node 2; node 1 is then
stopped for good partway through the jobs, and the queues elect new leaders on nodes 2 and 3.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rabbit_cluster import RabbitCluster, rabbit_bin
from soak import SoakConfig, run_soak

from broker import Topology, connect

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RabbitCluster]:
    if rabbit_bin("rabbitmq-server") is None:
        pytest.fail("rabbitmq-server is not installed: this test starts its own cluster")
    cluster = RabbitCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _leaders(cluster: RabbitCluster, namespace: str) -> dict[str, tuple[str, str]]:
    """Each of the namespace's queues: (type, leader node), asked of node 2."""
    rows = json.loads(
        cluster.ctl(
            cluster.nodes[1], "list_queues", "name", "type", "leader", "--formatter", "json"
        )
    )
    return {
        row["name"]: (row["type"], row["leader"])
        for row in rows
        if row["name"].startswith(namespace)
    }


@pytest.mark.timeout(1200)
async def test_stopping_a_node_mid_run_loses_and_duplicates_nothing(
    cluster: RabbitCluster, namespace: str, tmp_path: Path
) -> None:
    first, second, _ = cluster.nodes
    connection = await connect(first.url, name="declare-on-node-1")
    try:
        await Topology(namespace).declare(await connection.channel())
    finally:
        await connection.close()
    before = _leaders(cluster, namespace)
    assert before, "no queue was declared"
    assert {kind for kind, _ in before.values()} == {"quorum"}
    assert {leader for _, leader in before.values()} == {first.name}

    async def stop_node_one() -> dict[str, float]:
        started = time.monotonic()
        await asyncio.to_thread(cluster.stop_node, first)
        return {"node_stopped_s": round(time.monotonic() - started, 2)}

    config = SoakConfig(jobs=300, seed=11, forgeries=8, kills=0, broker_restarts=1, timeout=900)
    report = await run_soak(
        config,
        amqp_url=second.url,
        namespace=namespace,
        work_dir=tmp_path / "soak",
        broker_fault=stop_node_one,
    )
    summary = "\n".join(report.lines())
    print(summary)  # the figures, with -s or -rP
    assert len(report.broker_restarts) == 1, summary
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.done + report.failed == report.jobs, summary
    assert report.forgeries == report.rejected_dead_letters == report.rejected_audit_records
    assert report.audit_verified, summary
    assert report.ok, summary


def test_the_cluster_elects_new_leaders_when_the_leading_node_stops(
    cluster: RabbitCluster, namespace: str
) -> None:
    """The fault above is real: node 1 led the queues, and after it stops others lead them."""
    first = cluster.nodes[0]

    async def declare() -> None:
        connection = await connect(first.url, name="declare-on-node-1")
        try:
            await Topology(namespace).declare(await connection.channel())
        finally:
            await connection.close()

    asyncio.run(declare())
    assert {leader for _, leader in _leaders(cluster, namespace).values()} == {first.name}
    cluster.stop_node(first)
    deadline = time.monotonic() + 60
    while True:
        leaders = {leader for _, leader in _leaders(cluster, namespace).values()}
        if first.name not in leaders and "" not in leaders:
            break
        assert time.monotonic() < deadline, f"no new leaders within 60 s: {leaders}"
        time.sleep(0.5)
    assert leaders <= {node.name for node in cluster.nodes[1:]}
