"""Evaluations on a Dask cluster (QUANTDESK_AGENTS_BACKEND=dask): a real scheduler and worker started by the test,
a real `quantdesk serve` that submits its agents' development evaluations there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def cluster() -> Any:
    distributed = pytest.importorskip("distributed")
    local = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(local, set_as_default=False)
    yield client
    client.close()
    local.close()


def test_development_evaluations_run_on_the_dask_cluster(tmp_path: Path, server_factory: Any, tool: Any,
                                                          until: Any, cluster: Any) -> None:
    running = server_factory(tmp_path / "dask", extra_env={"QUANTDESK_AGENTS_BACKEND": "dask",
                                                           "QUANTDESK_DASK_ADDRESS": cluster.scheduler.address})
    headers = running.headers()
    created = tool(running.url, "create_agent", {"challenge": "ETH-1H-BINARY", "goal": "momentum", "days_back": 60,
                                                 "min_iterations": 1, "max_iterations": 1}, headers)
    assert not created.is_error, created.text
    agent_id = created.structured["id"]

    def iterations() -> list[dict[str, Any]] | None:
        listed = tool(running.url, "list_agent_iterations", {"agent_id": agent_id}, headers).structured["iterations"]
        return listed or None

    [record] = until(iterations, 300, "the first iteration")
    assert record["error"] is None, record
    assert record["metrics"]["segment"] == "development", record["metrics"]
    assert record["analysis"]["feature_report"]  # computed by the evaluator on the worker, sent back

    def prefixes(dask_scheduler: Any) -> list[str]:
        return list(dask_scheduler.task_prefixes)

    # The scheduler ran the evaluation: its task prefix is ours.
    assert any(name.startswith("agent-evaluation") for name in cluster.run_on_scheduler(prefixes))
    tool(running.url, "stop_agent", {"agent_id": agent_id}, headers)
