"""Our own canonical events: validated against TradeEvent / BookEvent and passed through unchanged."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from quantdesk.schemas.events import BookEvent, TradeEvent
from quantdesk.tools.normalize.emitter import Emitter
from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.parser import VenueParser
from quantdesk.tools.normalize.values import as_object

MESSAGES = ("trade (TradeEvent)", "book (BookEvent)")
_MODELS: dict[str, type[TradeEvent] | type[BookEvent]] = {"trade": TradeEvent, "book": BookEvent}


class SyntheticParser(VenueParser):
    source = "synthetic"

    def handle(self, index: int, msg: object, capture_ms: int | None, out: Emitter) -> None:
        m = as_object(msg, "event")
        kind = m.get("event_type")
        model = _MODELS.get(kind) if type(kind) is str else None
        if model is None:
            raise MessageError("malformed", "event_type must be 'trade' or 'book'")
        try:
            event = model.model_validate(m, strict=True)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise MessageError("invalid_value", f"{where}: {first['msg']}") from None
        out.emit(index, _dump(event))


def _dump(event: TradeEvent | BookEvent) -> dict[str, Any]:
    return event.model_dump()
