"""The desk fixtures (real DeskService on real SQLite, hand-written replay markets), shared with tests/desk."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("desk_fixtures", Path(__file__).parent.parent / "desk" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

desks = _fixtures.desks
market_file = _fixtures.market_file
ev = _fixtures.ev
