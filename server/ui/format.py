"""How the dashboard writes numbers and times: always with their unit, never more digits than mean something."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def usd(value: Any, digits: int = 2) -> str:
    number = _finite(value)
    if number is None:
        return "–"
    sign = "−" if number < 0 else ""
    return f"{sign}${abs(number):,.{digits}f}"


def num(value: Any, digits: int = 4) -> str:
    """A quantity or price: thousands separated, trailing zeros dropped."""
    number = _finite(value)
    if number is None:
        return "–"
    text = f"{number:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−")


def qty(value: Any, unit: str = "", digits: int = 6) -> str:
    text = num(value, digits)
    return f"{text} {unit}" if unit and text != "–" else text


def pct(value: Any, digits: int = 2, fraction: bool = True) -> str:
    """A share as a percentage: 0.1234 → 12.34 % (fraction=False when the value is already in percent)."""
    number = _finite(value)
    if number is None:
        return "–"
    return f"{number * (100 if fraction else 1):,.{digits}f} %".replace("-", "−")


def bps(value: Any, digits: int = 1) -> str:
    number = _finite(value)
    return "–" if number is None else f"{number:,.{digits}f} bps".replace("-", "−")


def ms_time(value: Any) -> str:
    """Milliseconds since the epoch as UTC wall time; the desk's clock may be simulated, so the date shows."""
    number = _finite(value)
    if number is None:
        return "–"
    return dt.datetime.fromtimestamp(number / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return "–"
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def nbytes(value: Any) -> str:
    number = _finite(value)
    if number is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(number) < 1024 or unit == "GiB":
            return f"{number:,.0f} {unit}" if unit == "B" else f"{number:,.1f} {unit}"
        number /= 1024
    return f"{number:,.1f} GiB"


def sign_class(value: Any) -> str:
    """A CSS class for gains and losses (the text keeps its sign, so colour is never the only cue)."""
    number = _finite(value)
    if number is None or number == 0:
        return ""
    return "gain" if number > 0 else "loss"


def domid(value: Any) -> str:
    """A string made safe for an HTML id (order ids and form names become part of ids)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(value))


FILTERS = {"domid": domid, "usd": usd, "num": num, "qty": qty, "pct": pct, "bps": bps, "ms_time": ms_time,
           "iso_time": iso_time, "nbytes": nbytes, "sign_class": sign_class}
