"""Typed reads of raw JSON fields; every failure is a `MessageError` naming the field and what is wrong.

Reasons name fields and JSON types, never the values read: a file that is not the expected format
must not come back through its error messages.

Venues send prices and sizes as decimal strings; numbers are accepted too. Booleans are never
numbers here (JSON `true` is not 1). Floats, not Decimal: the precision policy of the spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quantdesk.tools.normalize.outcomes import MessageError

INT64_MAX = 2**63 - 1
MAX_LEVELS = 32767  # the `depth` column is int16

Level = tuple[float, float]


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def as_object(value: object, what: str = "message") -> dict[str, Any]:
    if type(value) is not dict:
        raise MessageError("malformed", f"{what} must be a JSON object, got {type_name(value)}")
    return value


def as_list(value: object, what: str) -> list[Any]:
    if type(value) is not list:
        raise MessageError("wrong_type", f"{what} must be an array, got {type_name(value)}")
    return value


def field(obj: Mapping[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise MessageError("malformed", f"missing field {key!r}") from None


def text(obj: Mapping[str, Any], key: str) -> str:
    value = field(obj, key)
    if type(value) is not str or not value:
        raise MessageError("wrong_type", f"{key!r} must be a non-empty string, got {type_name(value)}")
    return value


def choice(value: object, table: Mapping[str, str], what: str) -> str:
    """The canonical spelling of an enumerated string field (a side, an action)."""
    if type(value) is str and value in table:
        return table[value]
    raise MessageError("invalid_value", f"{what!r} must be one of {', '.join(table)}")


def flag(obj: Mapping[str, Any], key: str) -> bool:
    value = field(obj, key)
    if type(value) is not bool:
        raise MessageError("wrong_type", f"{key!r} must be a boolean, got {type_name(value)}")
    return value


def integer(obj: Mapping[str, Any], key: str, *, minimum: int = -INT64_MAX - 1) -> int:
    return to_int(field(obj, key), key, minimum=minimum)


def optional_integer(obj: Mapping[str, Any], key: str, *, minimum: int = -INT64_MAX - 1) -> int | None:
    value = obj.get(key)
    return None if value is None else to_int(value, key, minimum=minimum)


def to_int(value: object, what: str, *, minimum: int = -INT64_MAX - 1, allow_text: bool = False) -> int:
    if type(value) is int:
        result = value
    elif allow_text and type(value) is str and value.lstrip("-").isdigit() and value.isascii():
        result = int(value)
    else:
        raise MessageError("wrong_type", f"{what!r} must be an integer, got {type_name(value)}")
    if result < minimum or result > INT64_MAX:
        raise MessageError("invalid_value", f"{what!r} is out of range (at least {minimum}, at most 2^63 - 1)")
    return result


def to_float(value: object, what: str) -> float:
    """A finite float from a decimal string or a JSON number."""
    kind = type(value)
    if kind is str:
        try:
            result = float(value)  # type: ignore[arg-type]
        except ValueError:
            raise MessageError("invalid_value", f"{what!r} is not a decimal number") from None
    elif kind is float or kind is int:
        result = float(value)  # type: ignore[arg-type]
    else:
        raise MessageError("wrong_type", f"{what!r} must be a decimal string or number, got {type_name(value)}")
    if not math.isfinite(result):
        raise MessageError("invalid_value", f"{what!r} is not finite")
    return result


def price(value: object, what: str = "price") -> float:
    result = to_float(value, what)
    if result <= 0.0:
        raise MessageError("invalid_value", f"{what!r} must be positive")
    return result


def amount(value: object, what: str = "size") -> float:
    """A size that may be zero (a deleted level) but not negative."""
    result = to_float(value, what)
    if result < 0.0:
        raise MessageError("invalid_value", f"{what!r} must not be negative")
    return result


def positive(value: object, what: str = "size") -> float:
    result = to_float(value, what)
    if result <= 0.0:
        raise MessageError("invalid_value", f"{what!r} must be positive")
    return result


def epoch_ms(value: int, what: str) -> int:
    """Milliseconds since the epoch from ms, µs or ns by magnitude (binance `timeUnit=MICROSECOND` sends µs)."""
    if value <= 0:
        raise MessageError("invalid_value", f"{what!r} must be a positive epoch time")
    if value >= 10**17:
        return value // 1_000_000
    if value >= 10**14:
        return value // 1_000
    return value


def levels(value: object, what: str) -> list[Level]:
    """`[[price, size, ...], ...]` as (price, size) floats; size 0 is a deletion."""
    rows = as_list(value, what)
    if len(rows) > MAX_LEVELS:
        raise MessageError("invalid_value", f"{what!r} carries {len(rows)} levels (at most {MAX_LEVELS})")
    # Fast path for the documented shape (decimal strings); anything else takes the checked loop below,
    # which accepts the same values and names what is wrong.
    out: list[Level] = []
    append = out.append
    try:
        for row in rows:
            if type(row) is not list:
                raise ValueError
            p, s = row[0], row[1]
            if type(p) is not str or type(s) is not str:
                raise ValueError
            pf, sf = float(p), float(s)
            if not (0.0 < pf < math.inf and 0.0 <= sf < math.inf):
                raise ValueError
            append((pf, sf))
        return out
    except (ValueError, IndexError):
        pass
    out = []
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) < 2:
            raise MessageError("wrong_type", f"{what}[{i}] must be [price, size, ...]")
        out.append((price(row[0], f"{what}[{i}].price"), amount(row[1], f"{what}[{i}].size")))
    return out


def text_levels(value: object, what: str) -> list[tuple[float, float, str, str]]:
    """Like `levels`, keeping the original price and size strings (OKX checksums are computed over them)."""
    rows = as_list(value, what)
    if len(rows) > MAX_LEVELS:
        raise MessageError("invalid_value", f"{what!r} carries {len(rows)} levels (at most {MAX_LEVELS})")
    out: list[tuple[float, float, str, str]] = []
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) < 2 or type(row[0]) is not str or type(row[1]) is not str:
            raise MessageError("wrong_type", f"{what}[{i}] must be [price string, size string, ...]")
        out.append((price(row[0], f"{what}[{i}].price"), amount(row[1], f"{what}[{i}].size"), row[0], row[1]))
    return out
