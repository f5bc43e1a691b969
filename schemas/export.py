"""The JSON Schema files of the shared contracts, written next to the models by `quantdesk export-schemas`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.schemas.generation import DriverConfig
from quantdesk.schemas.manifest import SimulationManifest

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "simulation_manifest.schema.json": SimulationManifest,
    "driver_config.schema.json": DriverConfig,
    "trade_event.schema.json": TradeEvent,
    "book_event.schema.json": BookEvent,
}


def schema_document(model: type[BaseModel]) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    written = []
    for name, model in SCHEMA_FILES.items():
        path = folder / name
        path.write_text(render(schema_document(model)))
        written.append(path)
    return written
