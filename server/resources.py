"""MCP resources and prompts, declared by the domains beside their tools and derived from them.

A resource is a tool seen as a document: reading `quantdesk://presets/{name}` is calling
`get_presets` with `{"name": ...}` through the registry (validation, scope, metrics, errors all
the same), then taking the JSON of its result, or the bytes of the file it points at. Concrete
URIs of a template come from a `Listing`, itself a tool call. A prompt is a named text template
that tells a model how to use the tools for a common task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_VARIABLE = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")
MAX_LISTED = 1000  # items one listing contributes; a listing past this is cut, not paginated by the tool


@dataclass(frozen=True, slots=True)
class Listing:
    """How to enumerate values: call `tool` with `arguments`, then `items` picks them out of its result.

    Each item is a dict holding the template's variables, and optionally `title`, `description`
    and `size` (bytes) for the listed resource.
    """

    tool: str
    items: Callable[[dict[str, Any]], list[dict[str, Any]]]
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    """One resource or resource template, read by calling `tool` with the URI's variables as arguments."""

    uri: str
    name: str
    title: str
    description: str
    tool: str
    domain: str
    mime_type: str = "application/json"
    select: Callable[[dict[str, Any]], Any] | None = None
    """Picks the document out of the tool's structured result (the whole result when None)."""
    listing: Listing | None = None
    changed_by: tuple[str, ...] = ()
    """Tools whose successful call changes this resource: subscribers are told, and lists refresh."""
    aliases: tuple[str, ...] = ()
    """Other URIs (templates too) read as this one, e.g. the names Aleatoric clients used."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """Fixed arguments added to the URI's variables."""
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_patterns", tuple(_compile(u) for u in (self.uri, *self.aliases)))

    @property
    def templated(self) -> bool:
        return bool(_VARIABLE.search(self.uri))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.uri))

    def match(self, uri: str) -> dict[str, str] | None:
        for pattern in self._patterns:
            found = pattern.fullmatch(uri)
            if found is not None:
                return found.groupdict()
        return None

    def expand(self, variables: Mapping[str, Any]) -> str:
        return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), self.uri)


def _compile(template: str) -> re.Pattern[str]:
    parts = _VARIABLE.split(template)
    # split() alternates literal text and variable names
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/?#]+?)" for i, part in enumerate(parts))
    return re.compile(regex)


@dataclass(frozen=True, slots=True)
class PromptArgument:
    name: str
    description: str
    required: bool = False
    completion: Listing | None = None
    """Where completion/complete finds candidate values (items carry the value under `name`)."""


@dataclass(frozen=True, slots=True)
class PromptEntry:
    """A prompt: `render(arguments)` gives the text of one user message."""

    name: str
    title: str
    description: str
    arguments: tuple[PromptArgument, ...]
    render: Callable[[dict[str, str]], str]
    domain: str
