"""Forms built from a tool's input schema: which fields, how each is entered, and the arguments a post makes.

The dashboard never validates on its own: the browser validation is off (`novalidate`) and numbers are
typed as text, so a bad value reaches the tool, and the tool's schema names the field and the problem.
The only checks here are the ones a form must make to build JSON at all (is this text a number?).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from quantdesk.server.errors import Problem

Kind = Literal["text", "integer", "number", "select", "checkbox", "json", "hidden", "textarea"]
_LONG_TEXT = 1000


@dataclass(frozen=True, slots=True)
class FormSpec:
    """One action of the dashboard: a tool, the fields shown (all of them when None), values fixed by the
    page, and how the button reads. Every form posts to `/ui/form/<id>`."""

    id: str
    tool: str
    fields: tuple[str, ...] | None = None
    hidden: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    submit: str = "Submit"
    confirm: str | None = None
    inline: bool = False
    danger: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    result: Literal["full", "brief"] = "full"


@dataclass(frozen=True, slots=True)
class FieldView:
    name: str
    label: str
    kind: Kind
    required: bool
    help: str = ""
    options: tuple[str, ...] = ()
    value: str = ""
    checked: bool = False
    error: str = ""
    placeholder: str = ""
    item_kind: str = ""


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found: Mapping[str, Any] = dict(schema.get("$defs", {})).get(ref.rsplit("/", 1)[1], {})
        return found
    return node


def _shape(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The property's own schema without its `null` alternative, and whether null was allowed."""
    prop = _resolve(schema, prop)
    nullable = False
    variants = prop.get("anyOf")
    if isinstance(variants, list):
        real = [_resolve(schema, v) for v in variants if v.get("type") != "null"]
        nullable = len(real) < len(variants)
        if len(real) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            return {**real[0], **merged}, nullable
        return prop, nullable
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        return {**prop, "type": rest[0] if len(rest) == 1 else rest}, True
    return prop, nullable


def _kind(prop: Mapping[str, Any]) -> Kind:
    if "enum" in prop:
        return "select"
    kind = prop.get("type")
    if kind == "boolean":
        return "checkbox"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "string":
        return "textarea" if int(prop.get("maxLength", 0)) > _LONG_TEXT else "text"
    return "json"


def _as_text(value: Any, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "json":
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_views(spec: FormSpec, schema: Mapping[str, Any], values: Mapping[str, Any] | None = None,
                errors: Mapping[str, str] | None = None) -> list[FieldView]:
    """The fields of a form, in the spec's order (or the schema's), with current values and errors."""
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    names = spec.fields if spec.fields is not None else tuple(n for n in props if n not in spec.fixed)
    values = values or {}
    errors = errors or {}
    views = []
    for name in (*names, *spec.hidden):
        if name not in props:
            raise KeyError(f"{spec.tool} has no argument {name!r} (form {spec.id})")
        prop, _ = _shape(schema, props[name])
        kind: Kind = "hidden" if name in spec.hidden else _kind(prop)
        default = spec.defaults.get(name, prop.get("default"))
        current = values.get(name, default)
        items = _resolve(schema, prop.get("items", {})) if kind == "json" else {}
        views.append(FieldView(
            name=name, label=spec.labels.get(name, name.replace("_", " ")), kind=kind,
            required=name in required, help=str(prop.get("description", "")),
            options=tuple(str(o) for o in prop.get("enum", ())),
            value=current if isinstance(current, str) and kind not in ("json",) else _as_text(current, kind),
            checked=current is True or current == "true", error=errors.get(name, ""),
            placeholder="" if default is None else _as_text(default, kind),
            item_kind=str(items.get("type", "")) if isinstance(items, Mapping) else ""))
    return views


def arguments_from_form(spec: FormSpec, schema: Mapping[str, Any], form: Mapping[str, str],
                        ) -> tuple[dict[str, Any], list[Problem]]:
    """The tool arguments a posted form makes. Empty fields are left out, so the tool's default applies."""
    props: Mapping[str, Any] = schema.get("properties", {})
    args: dict[str, Any] = {}
    problems: list[Problem] = []
    for view in field_views(spec, schema):
        raw = form.get(view.name)
        if view.kind == "checkbox":
            args[view.name] = raw is not None and raw not in ("", "false", "off")
            continue
        if raw is None or raw.strip() == "":
            continue
        text = raw.strip()
        prop, _ = _shape(schema, props[view.name])
        kind = _kind(prop) if view.kind == "hidden" else view.kind
        try:
            args[view.name] = _parse(text, kind, view.item_kind)
        except ValueError as exc:
            problems.append(Problem(f"$.{view.name}", str(exc)))
    args.update(spec.fixed)
    return args, problems


def _parse(text: str, kind: Kind, item_kind: str) -> Any:
    if kind == "integer":
        try:
            return int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            return float(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            if item_kind == "string":  # a list of names may be typed as `a, b, c`
                return [part.strip() for part in text.split(",") if part.strip()]
            raise ValueError("is not valid JSON") from None
    return text


def errors_by_field(spec: FormSpec, schema: Mapping[str, Any], problems: list[Problem]
                    ) -> tuple[dict[str, str], list[str]]:
    """Each problem beside the field it names (its first path part); the rest belong to the whole form."""
    shown = {view.name for view in field_views(spec, schema) if view.kind != "hidden"}
    by_field: dict[str, str] = {}
    general: list[str] = []
    for problem in problems:
        parts = problem.parts()
        name = parts[0] if parts and isinstance(parts[0], str) else None
        if name in shown:
            rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[1:])
            text = f"{rest.lstrip('.')}: {problem.message}" if rest else problem.message
            by_field[name] = f"{by_field[name]}; {text}" if name in by_field else text
        else:
            general.append(f"{problem.path}: {problem.message}")
    return by_field, general


def tool_form(tool: str) -> FormSpec:
    """The Tools page's form of a tool: every argument."""
    return replace(FormSpec(id=f"tool.{tool}", tool=tool), submit=f"Call {tool}")
