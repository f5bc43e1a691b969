"""Helpers shared by the normalizer tests: fixture files, outcome maps and event validation."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.tools.normalize import Counts, NormalizeResult

FIXTURES = Path(__file__).parent / "fixtures"

def read_fixture(name: str) -> list[dict[str, Any]]:
    """The rows of a fixture file: {"expect": "accepted" | "rejected:<kind>" | "non_event:<kind>", "payload": ...}."""
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines() if line.strip()]


def outcome_map(result: NormalizeResult) -> dict[int, str]:
    """The final outcome of every input index, spelled as in the fixtures."""
    got: dict[int, str] = {}
    for index in result.event_index:
        got.setdefault(index, "accepted")
    for rejection in result.rejections:
        got[rejection.index] = f"rejected:{rejection.kind}"
    for item in result.non_events:
        got.setdefault(item.index, f"non_event:{item.kind}")
    return got


def validate(events: Sequence[dict[str, Any]]) -> None:
    for event in events:
        (TradeEvent if event["event_type"] == "trade" else BookEvent).model_validate(event)


def balanced(counts: Counts) -> bool:
    return counts.accepted + counts.rejected + counts.non_event + counts.pending == counts.inputs


@pytest.fixture
def fixture_rows() -> Callable[[str], list[dict[str, Any]]]:
    return read_fixture


@pytest.fixture
def outcomes() -> Callable[[NormalizeResult], dict[int, str]]:
    return outcome_map


@pytest.fixture
def valid_events() -> Callable[[Sequence[dict[str, Any]]], None]:
    return validate


@pytest.fixture
def is_balanced() -> Callable[[Counts], bool]:
    return balanced
