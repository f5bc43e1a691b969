"""How a generation job is run. Never part of the manifest hash: the driver changes speed, not bytes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.schemas.manifest import compact_schema


class DriverConfig(BaseModel):
    """How a generation job runs (the Aleatoric `driver` block): it changes speed, never the bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=compact_schema)

    multiprocess: bool = Field(True, description="false: every window in-process.")
    workers: int = Field(2, ge=1, le=64, description="Worker processes (Dask: tasks in flight).")
    window_seconds: float = Field(3600.0, ge=1.0, le=86_400.0, description="Simulated time per task, in row groups.")
    max_retries: int = Field(3, ge=0, le=20, description="Per failed window.")
    backoff_seconds: float = Field(1.0, ge=0.0, le=60.0, description="First retry delay; doubles.")
    backend: Literal["process", "dask"] = Field(
        "process", description="dask: QUANTDESK_DASK_ADDRESS, or a LocalCluster when unset.")
