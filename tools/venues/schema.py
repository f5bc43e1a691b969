"""A compact JSON Schema for venue details: provenance said once, nested detail described in a line.

pydantic gives every `Sourced[T]` its own definition with the five provenance fields and their
descriptions (about 1.2 KB each, 14 of them) and spells nested models out in full: 28 KB in every
`tools/list`, which a model reads whole. Here the provenance lives in one `Figure` definition; a
figure at the top level is `{"$ref": "#/$defs/Figure", "properties": {"value": <its type>}}` (JSON
Schema 2020-12 applies `$ref` with its siblings), so it validates as strictly as before; nested
detail (fees, hours, endpoints, the funding block) becomes an object whose description lists its
keys and their types.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_FIGURE = "Figure"


def shared_figures(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every `Sourced[T]` definition folded into one `Figure`; each use keeps its value's type.

    A use becomes `{"$ref": "#/$defs/Figure", "properties": {"value": <T's schema>}}` (JSON Schema 2020-12
    applies a `$ref` together with its sibling keywords), so a figure validates as strictly as before. A
    type used by several figures (plain numbers) gets one short definition of that form, named for it.
    """
    defs: dict[str, Any] = schema.get("$defs", {})
    sourced = {name: d for name, d in defs.items() if name.startswith("Sourced")}
    if not sourced:
        return schema
    figure = copy.deepcopy(next(iter(sourced.values())))
    figure["properties"]["value"] = {
        "type": ["number", "integer", "string", "boolean", "object", "array", "null"],
        "description": "The figure: its type is given where the figure is used; null when the venue has none."}
    figure["description"] = ("A venue figure with its provenance. Check `verified`: unverified figures and "
                             "proposals are defaults to refresh from the named source.")
    for name, text in (("source", "Where the figure comes from."), ("as_of", "When it was recorded here."),
                       ("evidence", "doc: venue documentation; code: a public repository; 2nd: a secondary page; "
                                    "spec: the reference spec; unverified: believed, not confirmed; proposal: our "
                                    "modelling choice."),
                       ("verified", "False for unverified figures and proposals."), ("note", "Caveats.")):
        figure["properties"][name]["description"] = text
    figure.pop("title", None)

    text = json.dumps(schema)
    shared: dict[str, str] = {}  # Sourced def -> its short definition, for types several figures have
    thin: dict[str, Any] = {}

    def typed(name: str) -> dict[str, Any]:
        value = {k: v for k, v in sourced[name]["properties"]["value"].items() if k not in ("title", "description")}
        return {"$ref": f"#/$defs/{_FIGURE}", "properties": {"value": rewrite(value)}}

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        rest = {k: rewrite(v) for k, v in node.items() if k != "$ref"}
        if name in shared:
            return {"$ref": f"#/$defs/{shared[name]}", **rest}
        if name in sourced:
            return {**typed(name), **rest}
        return {k: rewrite(v) for k, v in node.items()}

    for name in sourced:
        kind = sourced[name]["properties"]["value"].get("type")
        if text.count(f'"#/$defs/{name}"') > 1 and kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            short = ("Nullable" if "null" in kinds else "") + "".join(
                k.title() for k in kinds if k != "null") + _FIGURE
            thin[short] = typed(name)
            shared[name] = short
    out = {k: rewrite(v) for k, v in schema.items() if k != "$defs"}
    details = {k: rewrite(v) for k, v in defs.items() if k not in sourced}
    # Nested detail (fees, hours, endpoints, the funding block, ...) becomes an object whose description lists
    # its keys and their types: a reader learns the same in a third of the bytes; the top level stays typed.
    out["$defs"] = {**{k: _described(v, thin) for k, v in details.items()}, **thin, _FIGURE: figure}
    return _without_unused_defs(out)


def _described(schema: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """A plain object schema whose description says what the full one did: its keys, their types, required ones."""
    required = set(schema.get("required", ()))
    keys = ", ".join(f"{name}{'' if name in required else '?'}: {_type_of(prop, figures)}"
                     for name, prop in schema.get("properties", {}).items())
    lead = schema.get("description", "").rstrip(".")
    return {"type": "object", "description": f"{lead + '. ' if lead else ''}{{{keys}}}"}


def _type_of(prop: dict[str, Any], figures: dict[str, Any]) -> str:
    """A short type: `number|null`, `list[Session]`, `Figure[number]`, an enum's values."""
    if "enum" in prop:
        return "|".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        if name == _FIGURE:
            return f"{_FIGURE}[{_type_of(prop['properties']['value'], figures)}]"
        if name in figures:
            return f"{_FIGURE}[{_type_of(figures[name]['properties']['value'], figures)}]"
        return name
    if "anyOf" in prop:
        return "|".join(_type_of(p, figures) for p in prop["anyOf"])
    kind = prop.get("type")
    if kind == "array":
        return f"list[{_type_of(prop.get('items', {}), figures)}]"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map[string, {_type_of(prop['additionalProperties'], figures)}]"
    return "|".join(kind) if isinstance(kind, list) else str(kind or "any")


def _without_unused_defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = schema["$defs"]
    used: set[str] = set()
    pending = [{k: v for k, v in schema.items() if k != "$defs"}]
    while pending:
        text = json.dumps(pending.pop())
        for name in defs:
            if name not in used and f'"#/$defs/{name}"' in text:
                used.add(name)
                pending.append(defs[name])
    schema["$defs"] = {k: v for k, v in defs.items() if k in used}
    return schema
