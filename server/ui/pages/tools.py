"""Tools: every registered tool with its description and a form made from its input schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantdesk.server.ui.site import Page, Panel, Visit


async def _tools(visit: Visit) -> Mapping[str, Any]:
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for entry in visit.ui.state.registry.list_tools():
        # Docstrings are wrapped for the source file; a browser wraps paragraphs itself.
        paragraphs = [" ".join(part.split()) for part in entry.description.split("\n\n") if part.strip()]
        by_domain.setdefault(entry.domain, []).append({
            "name": entry.name, "scope": entry.scope, "summary": paragraphs[0] if paragraphs else "",
            "more": paragraphs[1:], "allowed": visit.principal.allows(entry.scope),
            "read_only": entry.annotations.read_only, "destructive": entry.annotations.destructive})
    return {"domains": sorted(by_domain.items())}


def page() -> Page:
    return Page(slug="tools", title="Tools", template="tools.html", order=90,
                panels=(Panel("tools", "tools_list.html", _tools, title="Every tool"),))
