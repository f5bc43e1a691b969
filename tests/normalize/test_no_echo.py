"""Rejections say which input and what is wrong in general terms; they never quote what the input holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from quantdesk.tools.normalize import SOURCES, Normalizer, normalize_file

SECRET = "hunter2-s3cr3t"


def hostile_messages() -> list[Any]:
    """Inputs of the wrong format whose every string is the secret, in the places parsers read."""
    s = SECRET
    return [
        f"root:{s}:0:0:root:/root:/bin/bash",
        f'{{"{s}": oops',
        f"1625097600123456 {s}",
        {"e": s, "s": s}, {"e": "trade", "s": s, "t": 1, "p": s, "q": "1", "T": 1, "m": True, "M": True},
        {"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 1, "m": s, "M": True},
        {"lastUpdateId": s, "bids": [[s, s]], "asks": []},
        {"u": 1, "s": "BTCUSDT", "b": s, "B": "1", "a": "1", "A": "1"},
        {"arg": {"channel": s, "instId": s}, "data": []}, {"event": s},
        {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [{"px": s, "sz": "1", "side": s, "ts": s,
                                                                       "tradeId": "1"}]},
        {"topic": s, "data": []}, {"topic": "orderbook." + s, "type": "snapshot", "data": {}},
        {"topic": "publicTrade.BTCUSDT", "data": [{"s": "BTCUSDT", "S": s, "v": "1", "p": "1", "T": 1, "i": "1"}]},
        {"channel": s}, {"channel": "trades", "data": [{"coin": s, "side": s, "px": s, "sz": "1", "time": 1,
                                                        "tid": 1}]},
        {"template": s}, {"msg_type": s, "symbol": s},
        {"event_type": "trade", "exchange": s, "price": s},
        {"localTimestamp": s, "message": {}}, {"payload": {}, "capture_time_ms": s},
    ]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_no_reason_or_detail_quotes_the_input(source: str) -> None:
    result = Normalizer(source).normalize(hostile_messages())
    assert result.rejections, "the inputs are not valid messages"
    dumped = orjson.dumps(result.as_dict()).decode()
    assert SECRET not in dumped


def test_a_file_that_is_not_a_feed_is_reported_by_line_without_its_content(tmp_path: Path) -> None:
    source, out = tmp_path / "passwd", tmp_path / "out.parquet"
    source.write_text(f"root:x:0:0:root:/root:/bin/bash\nalice:{SECRET}:1000:1000::/home/alice:/bin/sh\n")
    summary = normalize_file("binance", source, out)
    assert [(r["line"], r["kind"]) for r in summary.rejections] == [(1, "malformed_json"), (2, "malformed_json")]
    assert SECRET not in orjson.dumps(summary.as_dict()).decode()
