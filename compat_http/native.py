"""quantdesk's own REST surface: `POST /tools/{name}` for every tool, arguments as the JSON body."""

from __future__ import annotations

from quantdesk.server.registry import ToolRegistry
from quantdesk.server.rest_rows import Profile, Row


def _rows(registry: ToolRegistry) -> tuple[Row, ...]:
    health = Row("GET", "/health", "get_health", public=True, summary="Health check (public)")
    download = Row("GET", "/artifacts/{cache_key}.parquet", "export_cache", file=True,
                   summary="Download an artifact (generate_dataset's download_url)")
    return (health, download, *(Row("POST", f"/tools/{entry.name}", entry.name, summary=f"Call {entry.name}")
                      for entry in registry.list_tools()))


PROFILE = Profile("native", "Tools", _rows)
