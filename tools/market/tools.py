"""Market simulation tools: the manifest's schema, validation, presets (and, with the generator, datasets)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from quantdesk.schemas.manifest import MODEL_VERSION, SimulationManifest, manifest_problems
from quantdesk.server.errors import NotFound
from quantdesk.server.registry import CallContext, ToolInput, ToolOutput, ToolSet
from quantdesk.tools.market.presets import PRESETS, PRESETS_BY_NAME

tools = ToolSet("market")


class NoArguments(ToolInput):
    pass


class ConfigSchemaOutput(ToolOutput):
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema (2020-12) of SimulationManifest.")
    model_version: str


class ValidateConfigInput(ToolInput):
    config: dict[str, Any] = Field(
        description="A candidate SimulationManifest (see get_config_schema). Legacy Aleatoric names "
        "(initial_mid, book_depth, volatility, ...) are accepted and canonicalized.")


class ProblemOut(ToolOutput):
    path: str = Field(description="JSON path of the offending value, e.g. $.config.tick_size.")
    message: str


class ValidateConfigOutput(ToolOutput):
    valid: bool
    problems: list[ProblemOut] = Field(description="Every problem found; empty when valid.")
    normalized: dict[str, Any] | None = Field(
        description="The fully-defaulted manifest with canonical names (null when invalid).")
    manifest_hash: str | None = Field(
        description="sha256: of the canonical JSON of the normalized manifest plus the model version.")
    model_version: str


class PresetsInput(ToolInput):
    name: str | None = Field(None, description="Return only this preset.")


class PresetOut(ToolOutput):
    name: str
    title: str
    description: str
    manifest: dict[str, Any] = Field(description="The complete, normalized SimulationManifest of the preset.")
    manifest_hash: str


class PresetsOutput(ToolOutput):
    presets: list[PresetOut]


@tools.tool(scope="read", title="SimulationManifest schema", read_only=True, idempotent=True)
async def get_config_schema(args: NoArguments, ctx: CallContext) -> ConfigSchemaOutput:
    """Return the JSON Schema of SimulationManifest, the configuration of a synthetic market.

    Every field carries its unit in its name, its bounds and its default. Read it before writing a
    config for validate_config or generate_dataset.
    """
    return ConfigSchemaOutput.model_validate(
        {"schema": SimulationManifest.model_json_schema(), "model_version": MODEL_VERSION})


@tools.tool(scope="read", title="Validate a simulation config", read_only=True, idempotent=True)
async def validate_config(args: ValidateConfigInput, ctx: CallContext) -> ValidateConfigOutput:
    """Validate a SimulationManifest and compute its deterministic hash, without generating anything.

    Returns every problem with its JSON path when the config is invalid; otherwise the normalized
    manifest (defaults filled, legacy names folded) and manifest_hash, which identifies the exact
    dataset generate_dataset would produce.
    """
    problems = manifest_problems(args.config, "$.config")
    if problems:
        return ValidateConfigOutput(valid=False, problems=[ProblemOut(path=p, message=m) for p, m in problems],
                                    normalized=None, manifest_hash=None, model_version=MODEL_VERSION)
    manifest = SimulationManifest.model_validate(args.config)
    return ValidateConfigOutput(valid=True, problems=[], normalized=manifest.canonical(),
                                manifest_hash=manifest.manifest_hash(), model_version=MODEL_VERSION)


@tools.tool(scope="read", title="Simulation presets", read_only=True, idempotent=True)
async def get_presets(args: PresetsInput, ctx: CallContext) -> PresetsOutput:
    """List named simulation presets (calm BTC, volatile BTC, ETH, a wide-spread small-cap, a flash-crash day).

    Each comes with a description and its complete manifest, ready to pass to generate_dataset as
    `config` or to adjust first.
    """
    if args.name is not None and args.name not in PRESETS_BY_NAME:
        raise NotFound(f"no preset named {args.name!r}; known: {', '.join(PRESETS_BY_NAME)}")
    chosen = [PRESETS_BY_NAME[args.name]] if args.name else list(PRESETS)
    out = []
    for preset in chosen:
        manifest = preset.manifest()
        out.append(PresetOut(name=preset.name, title=preset.title, description=preset.description,
                             manifest=manifest.canonical(), manifest_hash=manifest.manifest_hash()))
    return PresetsOutput(presets=out)
