"""Tie a call to its HTTP connection: a client that hangs up cancels the work it asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import anyio
from starlette.types import Receive

T = TypeVar("T")
WATCH_AFTER_SECONDS = 0.05


async def cancel_on_disconnect(receive: Receive, work: Awaitable[T]) -> T | None:
    """Await `work`; if the client disconnects first, cancel it and return None.

    Most calls end within milliseconds; watching the connection only once a call is slow keeps a
    quick call free of a watcher task (tens of microseconds, bench/mcp_overhead.py). `receive`
    must be past the request body, so the next message it yields is the disconnect.
    """
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None
    result: T | None = None
    with anyio.CancelScope() as scope:
        async def stop_on_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            scope.cancel()

        def watch() -> None:
            nonlocal watcher
            watcher = loop.create_task(stop_on_disconnect())

        timer = loop.call_later(WATCH_AFTER_SECONDS, watch)
        try:
            result = await work
        finally:
            timer.cancel()
            if watcher is not None:
                watcher.cancel()
    return result
