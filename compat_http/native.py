"""quantdesk's own REST surface: `POST /tools/{name}` for every tool, arguments as the JSON body."""

from __future__ import annotations

from quantdesk.server.registry import ToolRegistry
from quantdesk.server.rest_rows import Profile, Row


def _rows(registry: ToolRegistry) -> tuple[Row, ...]:
    health = Row("GET", "/health", "get_health", public=True, summary="Health check (public)")
    download = Row("GET", "/artifacts/{cache_key}.parquet", "export_cache", file=True,
                   summary="Download an artifact (generate_dataset's download_url)")
    jobs = (Row("GET", "/jobs", "list_jobs", summary="List jobs (newest first)"),
            Row("GET", "/jobs/{job_id}", "get_job", summary="A job's status, progress and result (a status_url)"),
            Row("DELETE", "/jobs/{job_id}", "cancel_job", summary="Cancel a job"))
    return (health, download, *jobs, *(Row("POST", f"/tools/{entry.name}", entry.name, summary=f"Call {entry.name}")
                                       for entry in registry.list_tools()))


PROFILE = Profile("native", "Tools", _rows)
