"""How a generation job is run. Never part of the manifest hash: the driver changes speed, not bytes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DriverConfig(BaseModel):
    """Execution settings of a generation job (the Aleatoric `driver` block plus the backend choice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multiprocess: bool = Field(True, description="Run windows in worker processes; false runs them in-process.")
    workers: int = Field(2, ge=1, le=64, description="Worker processes (or Dask tasks in flight).")
    window_seconds: float = Field(
        3600.0, ge=1.0, le=86_400.0,
        description="Simulated seconds per work unit, rounded to whole row groups (whole one-minute blocks).")
    max_retries: int = Field(3, ge=0, le=20, description="Retries of a failed window before the job fails.")
    backoff_seconds: float = Field(1.0, ge=0.0, le=60.0, description="First retry delay; doubles on each retry.")
    backend: Literal["process", "dask"] = Field(
        "process", description="`process`: a local process pool; `dask`: a distributed.Client "
        "to QUANTDESK_DASK_ADDRESS, or a LocalCluster when unset.")
