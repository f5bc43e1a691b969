"""Tools: every registered tool with its description and a form made from its input schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantdesk.server.ui.site import Page, Panel, Visit


async def _tools(visit: Visit) -> Mapping[str, Any]:
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for entry in visit.ui.state.registry.list_tools():
        by_domain.setdefault(entry.domain, []).append({
            "name": entry.name, "scope": entry.scope, "summary": entry.description.split("\n\n")[0],
            "description": entry.description, "allowed": visit.principal.allows(entry.scope),
            "read_only": entry.annotations.read_only, "destructive": entry.annotations.destructive})
    return {"domains": sorted(by_domain.items())}


def page() -> Page:
    return Page(slug="tools", title="Tools", template="tools.html", order=90,
                panels=(Panel("tools", "tools_list.html", _tools, title="Every tool"),))
