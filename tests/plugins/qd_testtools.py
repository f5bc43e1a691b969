"""Tools that exist only for tests, loaded into real servers with QUANTDESK_TOOL_MODULES=qd_testtools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from pydantic import BaseModel, Field

from quantdesk.server.registry import (
    AudioBlock,
    CallContext,
    ImageBlock,
    ResourceBlock,
    ToolInput,
    ToolOutput,
    ToolResult,
    ToolSet,
)

tools = ToolSet("testing")


class CountInput(ToolInput):
    steps: int = Field(ge=1, le=100)
    delay_seconds: float = Field(0.01, ge=0, le=1)


class CountOutput(ToolOutput):
    counted: int


class WaitInput(ToolInput):
    marker_path: str = Field(description="A file the tool writes 'started' to, then 'cancelled' when stopped.")


class Tick(BaseModel):
    index: int


class TicksInput(ToolInput):
    count: int = Field(ge=1, le=1000)


@tools.tool(scope="read", read_only=True)
async def count_slowly(args: CountInput, ctx: CallContext) -> CountOutput:
    """Count to `steps`, reporting progress after each step (a stand-in for a long tool)."""
    for step in range(1, args.steps + 1):
        await anyio.sleep(args.delay_seconds)
        await ctx.report_progress(step, args.steps, f"step {step} of {args.steps}")
    return CountOutput(counted=args.steps)


@tools.tool(scope="read")
async def wait_until_cancelled(args: WaitInput, ctx: CallContext) -> CountOutput:
    """Block until cancelled, recording in a marker file that the work started and that it was stopped."""
    marker = Path(args.marker_path)
    marker.write_text("started")
    try:
        await anyio.sleep_forever()
    finally:
        marker.write_text("cancelled")
    return CountOutput(counted=0)


@tools.tool(scope="read")
async def fail_unexpectedly(args: CountInput, ctx: CallContext) -> CountOutput:
    """Raise an unexpected exception whose message must never reach a client."""
    raise RuntimeError("secret internal detail /etc/passwd")


@tools.stream(scope="stream", event_model=Tick)
async def emit_ticks(args: TicksInput, ctx: CallContext) -> AsyncIterator[Tick]:
    """Emit `count` numbered ticks as a stream."""
    for index in range(args.count):
        yield Tick(index=index)


class BlocksOutput(ToolOutput):
    blocks: int


@tools.tool(scope="read", read_only=True, idempotent=True, output_model=BlocksOutput)
async def show_blocks(args: CountInput, ctx: CallContext) -> ToolResult:
    """Answer with one content block of every kind beside the structured result (for door parity tests)."""
    content = (ImageBlock(b"\x89PNG\r\n\x1a\n" + bytes(args.steps), "image/png"),
               AudioBlock(b"RIFF" + bytes(args.steps), "audio/wav"),
               ResourceBlock("quantdesk://test/text", "text/plain", text="hello"),
               ResourceBlock("quantdesk://test/blob", "application/octet-stream", blob=bytes(range(args.steps))))
    return ToolResult(BlocksOutput(blocks=len(content)), content)


@tools.stream(scope="stream", event_model=Tick)
async def emit_then_fail(args: TicksInput, ctx: CallContext) -> AsyncIterator[Tick]:
    """Emit `count` ticks, then fail unexpectedly (a stream that breaks after its first byte)."""
    for index in range(args.count):
        yield Tick(index=index)
    raise RuntimeError("secret internal detail /etc/shadow")
