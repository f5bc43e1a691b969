"""Recorded feeds: the line and wrapper formats that carry a message's local receive time.

A message that carries no exchange time (a binance spot bookTicker, partial depth, a REST snapshot)
can only be placed in time by when it was received. Recorders keep that time beside each message;
these are the formats read here (each checked against the recorder's own code):

- quantdesk's envelope: `{"payload": <message>, "capture_time_ms": <int>}`;
- tardis-machine `/replay` (`src/http/replay.ts`): `{"localTimestamp": "<ISO 8601>", "message": <message>}`;
- Tardis raw data files (tardis-node `src/replay.ts`): `<ISO 8601 with 7 fractional digits>Z <message>`;
- hftbacktest collectors (`collect-binancefutures`, `hftbacktest/data/utils/binancefutures.py`):
  `<epoch integer> <message>`, the integer in ms, µs or ns (13, 16 or 19 digits);
- cryptofeed raw files (`cryptofeed/util/async_file.py`): `<epoch seconds float>: <message>`, and
  `<url> -> <seconds>: <REST response>`; its `configuration:` header, `<url> <-> <seconds>` connect
  lines and `<url> <- <seconds>: <sent>` lines are recorder notes, not market data.

`read_text` turns one input text into the decoded message, wrapped in quantdesk's envelope when the
line carried a receive time, so every format reaches the parsers in one shape.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import lru_cache

import orjson

from quantdesk.tools.normalize.outcomes import MessageError
from quantdesk.tools.normalize.values import epoch_ms, to_int

RECORDER_FORMATS = (
    '{"payload": <message>, "capture_time_ms": <int>}',
    '{"localTimestamp": "<ISO 8601>", "message": <message>} (tardis-machine)',
    "<ISO 8601 time>Z <message> (Tardis raw files)",
    "<epoch ms, µs or ns> <message> (hftbacktest collectors)",
    "<epoch seconds>: <message> (cryptofeed raw files)",
)

_EPOCH_PREFIX = re.compile(rb"^(\d{13}|\d{16}|\d{19}) ")
_SECONDS_PREFIX = re.compile(rb"^(\d{9,10})\.(\d{1,9}): ")
_ISO_PREFIX = re.compile(rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z ")
_URL_RESPONSE = re.compile(rb"^[a-z]+://\S+ -> (\d{9,10})\.(\d{1,9}): ")
_URL_NOTE = re.compile(rb"^[a-z]+://\S+ <-?>? ")
_ISO_TEXT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$")
_TEXT = (bytes, bytearray, memoryview, str)


@dataclass(frozen=True, slots=True)
class RecorderNote:
    """A recorder's own line (a header, a connect or a sent-message record): no market data."""

    recorder: str


def read_text(text: bytes | bytearray | memoryview | str) -> object:
    """The decoded message of one input text; a recorder line's receive time comes back as the envelope.

    Raises `MessageError("malformed_json")` naming what is wrong, never quoting the text.
    """
    raw = text.encode() if isinstance(text, str) else bytes(text)
    raw = raw.strip()
    first = raw[:1]
    if first in (b"{", b"["):
        return _loads(raw, "the input")
    if first.isdigit():
        return _prefixed(raw)
    if raw.startswith(b"configuration: "):
        return RecorderNote("cryptofeed")
    if (m := _URL_RESPONSE.match(raw)) is not None:
        return _enveloped(raw[m.end():], _seconds_ms(m.group(1), m.group(2)))
    if _URL_NOTE.match(raw) is not None:
        return RecorderNote("cryptofeed")
    return _loads(raw, "the input")


def unwrap(payload: object) -> tuple[object, int | None]:
    """(message, capture time in ms or None) of a decoded input: quantdesk's envelope or tardis-machine's."""
    if type(payload) is not dict:
        return payload, None
    if "payload" in payload and (len(payload) == 1 or (len(payload) == 2 and "capture_time_ms" in payload)):
        stamp = payload.get("capture_time_ms")
        inner = payload["payload"]
        return _decoded(inner), None if stamp is None else epoch_ms(to_int(stamp, "capture_time_ms"), "capture_time_ms")
    if len(payload) == 2 and "localTimestamp" in payload and "message" in payload:
        stamp = payload["localTimestamp"]
        if type(stamp) is not str or (m := _ISO_TEXT.match(stamp)) is None:
            raise MessageError("wrong_type", "'localTimestamp' must be an ISO 8601 UTC time such as "
                                             "2024-02-29T23:59:59.9981234Z")
        return _decoded(payload["message"]), _iso_ms(m.group(1).encode(), (m.group(2) or "").encode())
    return payload, None


def _decoded(inner: object) -> object:
    return read_text(inner) if isinstance(inner, _TEXT) else inner


def _prefixed(raw: bytes) -> object:
    if (m := _ISO_PREFIX.match(raw)) is not None:
        return _enveloped(raw[m.end():], _iso_ms(m.group(1), m.group(2) or b""))
    if (m := _EPOCH_PREFIX.match(raw)) is not None:
        digits = m.group(1)
        stamp = int(digits)
        return _enveloped(raw[m.end():], stamp // {13: 1, 16: 1_000, 19: 1_000_000}[len(digits)])
    if (m := _SECONDS_PREFIX.match(raw)) is not None:
        return _enveloped(raw[m.end():], _seconds_ms(m.group(1), m.group(2)))
    return _loads(raw, "the input")  # a bare number is JSON, if not a message


def _enveloped(rest: bytes, capture_ms: int) -> dict[str, object]:
    return {"payload": _loads(rest, "the message after the recorder's timestamp"), "capture_time_ms": capture_ms}


def _loads(raw: bytes, what: str) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise MessageError("malformed_json", f"{what} is not JSON (error at character {err.pos})") from None


def _seconds_ms(seconds: bytes, fraction: bytes) -> int:
    return int(seconds) * 1000 + int((fraction + b"00")[:3])


def _iso_ms(whole: bytes, fraction: bytes) -> int:
    return _iso_seconds(whole) * 1000 + (int((fraction + b"00")[:3]) if fraction else 0)


@lru_cache(maxsize=4096)
def _iso_seconds(whole: bytes) -> int:
    """Epoch seconds of `YYYY-MM-DDTHH:MM:SS` (UTC); cached, as a feed repeats each second many times."""
    t = whole.decode()
    try:
        fields = (int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), int(t[17:19]))
        if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= calendar.monthrange(fields[0], fields[1])[1]
                and fields[3] < 24 and fields[4] < 60 and fields[5] < 61):
            raise ValueError
    except ValueError:
        raise MessageError("invalid_value", "the recorder's timestamp is not a valid UTC time") from None
    return calendar.timegm((*fields, 0, 0, 0))
