"""The one tool registry: declarations, validation, scope checks and dispatch.

A domain declares its tools in `tools/<domain>/tools.py` with a `ToolSet`; `discover_tools`
imports every such module and adds its tools to one `ToolRegistry`. Every door (MCP, REST,
CLI) calls `ToolRegistry.call`, so validation, authorization, metrics and error mapping
happen once, here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import math
import pkgutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, get_type_hints

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from quantdesk.server.context import SCOPES, CallContext, ServiceFactory
from quantdesk.server.resources import Listing, PromptArgument, PromptEntry, ResourceEntry

__all__ = ["CallContext", "ToolInput", "ToolOutput", "ToolResult", "ToolSet", "ToolRegistry", "ToolEntry",
           "ImageBlock", "AudioBlock", "ResourceBlock", "FileBlock", "Annotations", "CallOutcome", "discover_tools"]
if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError as SchemaError

from quantdesk.server.errors import Forbidden, InvalidArgument, NotFound, Problem, QuantdeskError

logger = logging.getLogger("quantdesk.registry")


class ToolInput(BaseModel):
    """Base of every tool's argument model: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    """Base of every tool's result model."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Annotations:
    """MCP tool annotations, with the spec's defaults made explicit."""

    title: str | None = None
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False


@dataclass(frozen=True, slots=True)
class ImageBlock:
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class AudioBlock:
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class ResourceBlock:
    uri: str
    mime_type: str
    text: str | None = None
    blob: bytes | None = None


@dataclass(frozen=True, slots=True)
class FileBlock:
    """A file the result points at (an artifact): REST doors send the file, MCP a resource link."""

    path: Path
    uri: str
    name: str
    mime_type: str
    size: int


ContentBlock = ImageBlock | AudioBlock | ResourceBlock | FileBlock


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A handler's answer when it carries content beside the structured output (a PNG chart, say)."""

    output: BaseModel
    content: tuple[ContentBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What a door renders: the structured result as JSON-ready data, plus extra content blocks."""

    structured: dict[str, Any]
    content: tuple[ContentBlock, ...] = ()

    def text(self) -> str:
        return orjson.dumps(self.structured).decode()


InputT = TypeVar("InputT", bound=BaseModel)
Handler = Callable[[Any, CallContext], Awaitable[BaseModel | ToolResult]]
StreamHandler = Callable[[Any, CallContext], AsyncIterator[BaseModel]]


class CallObserver(Protocol):
    def __call__(self, tool: str, door: str, outcome: str, seconds: float) -> None: ...


def _json_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_problems(error: SchemaError) -> list[Problem]:
    """Turn one JSON Schema error into problems that name the exact field."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [Problem(_json_path([*path, name]), "is required") for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in known)
        return [Problem(_json_path([*path, name]), "is not a known field") for name in extra]
    if error.context:
        # For `anyOf: [{type: integer, maximum: ...}, {type: null}]` the null branch's "is not of type 'null'"
        # says nothing useful; the violated bound lives in the branch whose type the value has.
        relevant = [e for e in error.context if e.validator != "type"] or list(error.context)
        from jsonschema.exceptions import best_match

        deepest = best_match(relevant)
        if deepest is not None:
            return [Problem(_json_path([*path, *deepest.relative_path]), _without_value(deepest))]
    return [Problem(_json_path(path), _without_value(error))]


# jsonschema's messages start with the offending value ("'BBBB…' is too long"): a 15 MB string came back
# whole. Say what is wrong with the bound instead, never the value.
_BOUND_MESSAGES = {
    "maxLength": "is longer than {} characters", "minLength": "is shorter than {} characters",
    "maxItems": "has more than {} items", "minItems": "has fewer than {} items",
    "maxProperties": "has more than {} entries", "minProperties": "has fewer than {} entries",
    "pattern": "does not match the pattern {}", "enum": "must be one of {}", "const": "must be {}",
    "type": "must be of type {}", "format": "is not a valid {}",
}


def _without_value(error: SchemaError) -> str:
    template = _BOUND_MESSAGES.get(str(error.validator))
    if template is None:
        return error.message if len(repr(error.instance)) <= 80 else f"violates {error.validator}"
    return template.format(orjson.dumps(error.validator_value).decode())


def pydantic_problems(error: ValidationError, prefix: Iterable[str | int] = ()) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        # Cross-field validators report several rules in one "Value error, a; b" message: split them.
        for message in str(item["msg"]).removeprefix("Value error, ").split("; "):
            problems.append(Problem(_json_path([*prefix, *loc]), message))
    return problems


def _non_finite_paths(value: Any, path: str) -> list[str]:
    if type(value) is float:
        return [] if math.isfinite(value) else [path]
    if type(value) is dict:
        return [p for k, v in value.items() if type(v) in (float, dict, list)
                for p in _non_finite_paths(v, f"{path}.{k}")]
    if type(value) is list:
        return [p for i, v in enumerate(value) if type(v) in (float, dict, list)
                for p in _non_finite_paths(v, f"{path}[{i}]")]
    return []


@dataclass(frozen=True, slots=True)
class MetricSource:
    prefix: str
    source: Callable[[Any], Mapping[str, Any]]
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One registered tool. Frozen: the registry's table never changes under a running door."""

    name: str
    description: str
    domain: str
    scope: str
    annotations: Annotations
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler | StreamHandler
    streaming: bool
    event_model: Any
    max_batch: int
    _schemas: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)
    brief: tuple[tuple[str, str], ...] = ()
    _validator: list[jsonschema.Draft202012Validator] = field(default_factory=list, repr=False, compare=False)

    @property
    def input_schema(self) -> dict[str, Any]:
        """The advertised JSON Schema of the arguments, generated on first use.

        Generating every tool's schemas costs a quarter of a second; a stdio server answers
        `initialize` without them, and pydantic validates arguments without them.
        """
        schema = self._schemas.get("input")
        if schema is None:
            schema = self._schemas["input"] = compact_schema(self.input_model.model_json_schema(mode="validation"))
        return schema

    @property
    def output_schema(self) -> dict[str, Any]:
        schema = self._schemas.get("output")
        if schema is None:
            schema = self._schemas["output"] = compact_schema(
                self.output_model.model_json_schema(mode="serialization"))
        return schema

    @property
    def validator(self) -> jsonschema.Draft202012Validator:
        """The compiled JSON Schema validator, built on the first input pydantic refuses.

        jsonschema costs a tenth of a second to import and most processes never see a bad input.
        """
        if not self._validator:
            import jsonschema

            self._validator.append(jsonschema.Draft202012Validator(self.input_schema))
        return self._validator[0]

    def parse_arguments(self, arguments: dict[str, Any]) -> BaseModel:
        """Validate against the advertised schema (every problem, with its path), then build the model.

        pydantic-core in strict JSON mode accepts exactly what the advertised schema accepts and is
        an order of magnitude faster than a JSON Schema pass, so valid input takes that path; only
        input it refuses goes through the compiled JSON Schema validator, which names every problem.
        """
        non_finite = _non_finite_paths(arguments, "$")
        if non_finite:
            # orjson would write NaN as null and let it through as "no value": refuse it on every door.
            raise InvalidArgument.from_problems([Problem(p, "must be a finite number (NaN and Infinity are not "
                                                            "JSON numbers)") for p in non_finite])
        try:
            return self.input_model.model_validate_json(orjson.dumps(arguments), strict=True)
        except (ValidationError, TypeError):
            pass
        errors = list(self.validator.iter_errors(arguments))
        if errors:
            errors.sort(key=lambda e: list(map(str, e.absolute_path)))
            problems = [problem for error in errors for problem in schema_problems(error)]
            raise InvalidArgument.from_problems(problems)
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidArgument.from_problems(pydantic_problems(exc)) from None

    def describe(self) -> dict[str, Any]:
        """The tool as discovery documents show it (MCP field names, plus quantdesk's scope)."""
        a = self.annotations
        annotations: dict[str, Any] = {"readOnlyHint": a.read_only, "destructiveHint": a.destructive,
                       "idempotentHint": a.idempotent, "openWorldHint": a.open_world}
        if a.title:
            annotations["title"] = a.title
        return {"name": self.name, "description": self.description, "scope": self.scope,
                "streaming": self.streaming, "annotations": annotations,
                "inputSchema": self.input_schema, "outputSchema": self.output_schema}

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description.split("\n\n")[0], "scope": self.scope}


_SCALAR_KEYWORDS = {"enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not"}


def compact_schema(node: Any) -> Any:
    """The same schema in fewer bytes: no titles pydantic derives from names, `Optional[X]` as
    `type: [X, "null"]` instead of an `anyOf`, and no `default: null`.

    Every model reads `tools/list` in full on every conversation; these forms validate exactly
    the same values and cost about a fifth of it.
    """
    if isinstance(node, list):
        return [compact_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: compact_schema(v) for k, v in node.items()
           if not (k == "title" and isinstance(v, str)) and not (k == "default" and v is None)}
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = next(b for b in branches if b != {"type": "null"})
        if isinstance(other.get("type"), str) and not _SCALAR_KEYWORDS & set(other) \
                and not set(other) & (set(out) - {"anyOf"}):
            out = {**{k: v for k, v in out.items() if k != "anyOf"}, **other, "type": [other["type"], "null"]}
    return out


def _make_entry(
    fn: Callable[..., Any],
    *,
    domain: str,
    name: str | None,
    scope: str,
    annotations: Annotations,
    output_model: type[BaseModel] | None,
    event_model: Any,
    streaming: bool,
    max_batch: int = 0,
    brief: tuple[tuple[str, str], ...] = (),
) -> ToolEntry:
    tool_name = name or fn.__name__
    if scope not in SCOPES:
        raise ValueError(f"tool {tool_name}: unknown scope {scope!r}")
    description = inspect.cleandoc(fn.__doc__ or "")
    if not description:
        raise ValueError(f"tool {tool_name}: the docstring is the description a model reads; write one")
    hints = get_type_hints(fn)
    params = list(inspect.signature(fn).parameters)
    input_model = hints.get(params[0]) if params else None
    if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
        raise TypeError(f"tool {tool_name}: the first parameter must be annotated with a pydantic model")
    if streaming:
        if event_model is None:
            raise TypeError(f"tool {tool_name}: a streaming tool names its event_model")
        output_model = output_model or create_model(
            f"{tool_name.title().replace('_', '')}Batch",
            __base__=ToolOutput,
            events=(list[event_model], ...),
            count=(int, ...),
            truncated=(bool, Field(description=f"True when the stream had more than {max_batch} events; "
                                               "the SSE route delivers all of them.")),
        )
    elif output_model is None:
        returned = hints.get("return")
        if not (isinstance(returned, type) and issubclass(returned, BaseModel)):
            raise TypeError(f"tool {tool_name}: annotate the return with the output model or pass output_model=")
        output_model = returned
    return ToolEntry(
        name=tool_name,
        description=description,
        domain=domain,
        scope=scope,
        annotations=annotations,
        input_model=input_model,
        output_model=output_model,
        handler=fn,
        streaming=streaming,
        event_model=event_model,
        max_batch=max_batch,
        brief=brief,
    )


class ToolSet:
    """A domain's declarations: its tools and the services they need.

    ```
    tools = ToolSet("market")

    @tools.tool(scope="read", read_only=True, idempotent=True)
    async def get_presets(args: GetPresetsInput, ctx: CallContext) -> GetPresetsOutput:
        '''What the tool does, for a model choosing tools.'''
    ```
    """

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.entries: list[ToolEntry] = []
        self.resources: list[ResourceEntry] = []
        self.prompts: list[PromptEntry] = []
        self.factories: dict[type[Any], ServiceFactory] = {}
        self.start_services: list[type[Any]] = []
        self.metric_sources: list[MetricSource] = []

    def tool(
        self,
        *,
        scope: str,
        name: str | None = None,
        title: str | None = None,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
        output_model: type[BaseModel] | None = None,
        brief: Mapping[str, str] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """`brief` names input fields that tools/list shows as one line pointing at their full schema (a shared
        definition another tool or a resource carries); validation, discovery and OpenAPI keep the full one."""
        annotations = Annotations(title, read_only, destructive, idempotent, open_world)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.entries.append(
                _make_entry(fn, domain=self.domain, name=name, scope=scope, annotations=annotations,
                            output_model=output_model, event_model=None, streaming=False,
                            brief=tuple((brief or {}).items()))
            )
            return fn

        return register

    def stream(
        self,
        *,
        scope: str,
        event_model: Any,
        name: str | None = None,
        title: str | None = None,
        output_model: type[BaseModel] | None = None,
        max_batch: int = 10_000,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A tool whose handler is an async generator of events.

        SSE doors forward the events as they come, for as long as the stream runs; over MCP each
        event is a progress notification and the result carries at most `max_batch` of them.
        """
        annotations = Annotations(title, read_only=True, idempotent=True)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.entries.append(
                _make_entry(fn, domain=self.domain, name=name, scope=scope, annotations=annotations,
                            output_model=output_model, event_model=event_model, streaming=True,
                            max_batch=max_batch)
            )
            return fn

        return register

    def resource(self, uri: str, *, tool: str, name: str, title: str, description: str,
                 mime_type: str = "application/json", select: Callable[[dict[str, Any]], Any] | None = None,
                 listing: Listing | None = None, changed_by: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
                 arguments: dict[str, Any] | None = None) -> None:
        """Expose a tool's result as an MCP resource (a template when `uri` has `{variables}`)."""
        self.resources.append(ResourceEntry(uri, name, title, description, tool, self.domain, mime_type, select,
                                            listing, changed_by, aliases, arguments or {}))

    def prompt(self, *, title: str, name: str | None = None, arguments: tuple[PromptArgument, ...] = ()
               ) -> Callable[[Callable[[dict[str, str]], str]], Callable[[dict[str, str]], str]]:
        """A prompt whose text `fn(arguments)` renders; the docstring is its description."""

        def register(fn: Callable[[dict[str, str]], str]) -> Callable[[dict[str, str]], str]:
            description = inspect.cleandoc(fn.__doc__ or "")
            if not description:
                raise ValueError(f"prompt {name or fn.__name__}: write a docstring, it is the description")
            self.prompts.append(PromptEntry(name or fn.__name__, title, description, arguments, fn, self.domain))
            return fn

        return register

    def metrics(self, prefix: str, source: Callable[[Any], Mapping[str, Any]],
                labels: Mapping[str, str] | None = None) -> None:
        """Publish a domain's counters and gauges in the server's Prometheus exposition.

        `source(services)` returns plain numbers: a name ending in `_total` is a counter, any other a
        gauge; a dict value is one series per key, under the label `labels[name]` (default `key`).
        """
        self.metric_sources.append(MetricSource(prefix, source, dict(labels or {})))

    def service(self, kind: type[Any], factory: ServiceFactory, *, at_start: bool = False) -> None:
        """Register how to build a service; `at_start` builds it when the server starts, not on first use.

        A service whose construction repairs state after a crash (stale jobs, staging files) starts
        eagerly, so the repair happens at start-up rather than at the first call that needs it.
        """
        self.factories[kind] = factory
        if at_start:
            self.start_services.append(kind)


class ToolRegistry:
    """A table of frozen `ToolEntry`s behind `add_tool` / `get_tool` / `list_tools` / `call_tool`."""

    def __init__(self, observer: CallObserver | None = None) -> None:
        self._tools: dict[str, ToolEntry] = {}
        self._resources: dict[str, ResourceEntry] = {}
        self._prompts: dict[str, PromptEntry] = {}
        self.factories: dict[type[Any], ServiceFactory] = {}
        self.start_services: list[type[Any]] = []
        self.metric_sources: list[MetricSource] = []
        self.observers: list[CallObserver] = [observer] if observer is not None else []

    def add_tool(self, entry: ToolEntry) -> None:
        if entry.name in self._tools:
            other = self._tools[entry.name].domain
            raise ValueError(f"duplicate tool name {entry.name!r} (domains {other} and {entry.domain})")
        self._tools[entry.name] = entry

    def add_toolset(self, toolset: ToolSet) -> None:
        for entry in toolset.entries:
            self.add_tool(entry)
        for resource in toolset.resources:
            if resource.uri in self._resources:
                raise ValueError(f"duplicate resource {resource.uri!r}")
            self._resources[resource.uri] = resource
        for prompt in toolset.prompts:
            if prompt.name in self._prompts:
                raise ValueError(f"duplicate prompt {prompt.name!r}")
            self._prompts[prompt.name] = prompt
        for kind, factory in toolset.factories.items():
            if kind in self.factories:
                raise ValueError(f"duplicate service factory for {kind.__name__}")
            self.factories[kind] = factory
        self.start_services += toolset.start_services
        self.metric_sources += toolset.metric_sources

    def get_tool(self, name: str) -> ToolEntry:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFound(f"unknown tool: {name}") from None

    def has_tool(self, name: str) -> bool:
        return name in self._tools

    def list_resources(self) -> list[ResourceEntry]:
        return [self._resources[uri] for uri in sorted(self._resources)]

    def list_prompts(self) -> list[PromptEntry]:
        return [self._prompts[name] for name in sorted(self._prompts)]

    def get_prompt(self, name: str) -> PromptEntry:
        try:
            return self._prompts[name]
        except KeyError:
            raise NotFound(f"unknown prompt: {name}") from None

    def check_references(self) -> None:
        """Every resource, listing and completion names a registered tool (raises at start-up otherwise)."""
        for resource in self._resources.values():
            named = [resource.tool, *([resource.listing.tool] if resource.listing else [])]
            for tool in named:
                if tool not in self._tools:
                    raise ValueError(f"resource {resource.uri!r} names unknown tool {tool!r}")
        for prompt in self._prompts.values():
            for argument in prompt.arguments:
                if argument.completion is not None and argument.completion.tool not in self._tools:
                    raise ValueError(f"prompt {prompt.name!r} completes from unknown tool {argument.completion.tool!r}")

    def list_tools(self) -> list[ToolEntry]:
        """Every tool in a deterministic order (by name), as 2026-07-28 asks of tools/list."""
        return [self._tools[name] for name in sorted(self._tools)]

    def authorize(self, entry: ToolEntry, ctx: CallContext) -> None:
        if not ctx.principal.allows(entry.scope):
            raise Forbidden(
                f"the credential lacks the '{entry.scope}' scope that {entry.name} needs", missing_scope=entry.scope
            )

    async def call_tool(self, name: str, arguments: dict[str, Any] | None, ctx: CallContext) -> CallOutcome:
        """Validate, authorize and run one tool call; every door comes through here."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            entry = self.get_tool(name)
            self.authorize(entry, ctx)
            args = entry.parse_arguments(arguments if arguments is not None else {})
            if entry.streaming:
                return await self._collect(entry, args, ctx)
            result = await cast(Handler, entry.handler)(args, ctx)
            return _to_outcome(entry, result)
        except QuantdeskError as exc:
            outcome = exc.kind
            raise
        except Exception:
            outcome = "internal"
            raise
        finally:
            self._observe(name, ctx.door, outcome, started)

    async def open_stream(
        self, name: str, arguments: dict[str, Any] | None, ctx: CallContext
    ) -> AsyncIterator[BaseModel]:
        """Validate and authorize a streaming tool, then hand back its event iterator (SSE doors).

        The stream counts as one call in the metrics, observed when it ends: "ok" when it ran out or
        the client left, the error's kind when it failed.
        """
        started = time.perf_counter()
        try:
            entry = self.get_tool(name)
            if not entry.streaming:
                raise InvalidArgument(f"{name} is not a streaming tool")
            self.authorize(entry, ctx)
            args = entry.parse_arguments(arguments if arguments is not None else {})
        except QuantdeskError as exc:
            self._observe(name, ctx.door, exc.kind, started)
            raise
        return self._observed(name, ctx.door, cast(StreamHandler, entry.handler)(args, ctx), started)

    async def _observed(self, name: str, door: str, stream: AsyncIterator[BaseModel],
                        started: float) -> AsyncIterator[BaseModel]:
        outcome = "ok"
        try:
            async for event in stream:
                yield event
        except QuantdeskError as exc:
            outcome = exc.kind
            raise
        except Exception:
            outcome = "internal"
            raise
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            self._observe(name, door, outcome, started)

    def _observe(self, name: str, door: str, outcome: str, started: float) -> None:
        seconds = time.perf_counter() - started
        for observer in self.observers:
            observer(name if name in self._tools else "_unknown", door, outcome, seconds)

    async def _collect(self, entry: ToolEntry, args: BaseModel, ctx: CallContext) -> CallOutcome:
        events: list[dict[str, Any]] = []
        truncated = False
        stream = cast(StreamHandler, entry.handler)(args, ctx)
        try:
            async for event in stream:
                if len(events) == entry.max_batch:
                    truncated = True
                    break
                data = event.model_dump(mode="json", exclude_none=True)
                events.append(data)
                await ctx.report_progress(len(events), None, orjson.dumps(data).decode())
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return CallOutcome({"events": events, "count": len(events), "truncated": truncated})


def _to_outcome(entry: ToolEntry, result: BaseModel | ToolResult) -> CallOutcome:
    if isinstance(result, ToolResult):
        output, content = result.output, result.content
    else:
        output, content = result, ()
    if not isinstance(output, entry.output_model):
        raise TypeError(f"{entry.name} returned {type(output).__name__}, not {entry.output_model.__name__}")
    return CallOutcome(output.model_dump(mode="json", by_alias=True), content)


def load_toolset(module_name: str) -> ToolSet:
    module = importlib.import_module(module_name)
    toolset = getattr(module, "tools", None)
    if not isinstance(toolset, ToolSet):
        raise TypeError(f"{module_name} must define `tools = ToolSet(...)`")
    return toolset


def discover_tools(registry: ToolRegistry, package: str = "quantdesk.tools",
                   extra_modules: Iterable[str] = ()) -> ToolRegistry:
    """Import every `<package>/<domain>/tools.py`, plus any extra modules, and add their `tools` ToolSets."""
    root = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        module_name = f"{package}.{info.name}.tools"
        if info.ispkg and importlib.util.find_spec(module_name) is not None:
            registry.add_toolset(load_toolset(module_name))
    for module_name in extra_modules:
        registry.add_toolset(load_toolset(module_name))
    return registry
