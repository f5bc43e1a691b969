"""Datasets: the cache list, generate from a preset with a progress bar, describe a dataset (its stylized facts
against their bands), its price, volume and spread chart, and download.

Generation streams the tool's own progress (ctx.progress) to the browser as SSE, the way the REST door does
for a waiting call. The chart is plot_dataset's PNG: no tool returns a dataset's bars as numbers, and binning
events into bars here would be finance computed in the door.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from sse_starlette import EventSourceResponse
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from quantdesk.server.context import CallContext
from quantdesk.server.errors import InvalidArgument, Problem, QuantdeskError
from quantdesk.server.registry import CallOutcome, FileBlock, ImageBlock
from quantdesk.server.ui.forms import FormSpec
from quantdesk.server.ui.routes import guarded
from quantdesk.server.ui.site import Page, Panel, Ui, Visit

logger = logging.getLogger("quantdesk.ui")

FORMS = (
    FormSpec("datasets.delete", "delete_cache", fields=(), hidden=("cache_key",), inline=True, danger=True,
             result="brief", submit="Delete",
             confirm="Delete this dataset and its Parquet file? This cannot be undone."),
)
DEFAULT_SECONDS = 3_600
MAX_SECONDS = 86_400
"""A browser waits on the stream while the file is made: a day at most here (the API goes to a week)."""
DURATIONS = ((60, "1 minute"), (600, "10 minutes"), (3_600, "1 hour"), (21_600, "6 hours"), (86_400, "1 day"))
CHART_SIZES = {"small": (480, 600), "large": (1200, 620)}
"""Pixel sizes of plot_dataset's PNG: a phone gets a narrower, taller chart so its labels stay readable."""


def _key(visit: Visit) -> str:
    return visit.request.query_params.get("key", "").strip()


async def _cache(visit: Visit) -> Mapping[str, Any]:
    return {"stats": await visit.call("get_cache_stats"), "selected": _key(visit)}


async def _chart(visit: Visit) -> Mapping[str, Any]:
    key = _key(visit)
    if not key:
        return {"key": "", "manifest": {}}
    return {"key": key, "manifest": (await visit.call("get_cache_manifest", {"cache_key": key}))["manifest"]}


async def _describe(visit: Visit) -> Mapping[str, Any]:
    key = _key(visit)
    if not key:
        return {"key": "", "described": {}}
    return {"key": key, "described": await visit.call("describe_dataset", {"cache_key": key})}


# --- generate ---------------------------------------------------------------------------------------------

def _whole(text: str, path: str, problems: list[Problem]) -> int | None:
    """A typed whole number, or a problem beside its field (the form must build JSON before the tool sees it)."""
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        problems.append(Problem(path, f"{text!r} is not a whole number"))
        return None


def _generation_args(posted: Mapping[str, str], presets: list[dict[str, Any]]) -> dict[str, Any]:
    """generate_dataset's arguments: the chosen preset's manifest, the duration and an optional seed."""
    problems: list[Problem] = []
    name = posted.get("preset", "")
    preset = next((p for p in presets if p["name"] == name), None)
    if preset is None:
        problems.append(Problem("$.preset", f"{name!r} is not a preset"))
    duration = posted.get("duration_seconds", "").strip() or str(DEFAULT_SECONDS)
    seconds = _whole(duration, "$.duration_seconds", problems)
    if seconds is not None and seconds > MAX_SECONDS:
        problems.append(Problem("$.duration_seconds", f"the dashboard generates at most {MAX_SECONDS:,} s (a day); "
                                "longer runs: generate_dataset with wait=false over the API"))
    seed_text = posted.get("seed", "").strip()
    seed = _whole(seed_text, "$.config.seed", problems) if seed_text else None
    if problems or preset is None:
        raise InvalidArgument.from_problems(problems)
    config = dict(preset["manifest"])
    if seed is not None:
        config["seed"] = seed
    return {"config": config, "duration_seconds": seconds}


_FIELD_OF = {"preset": "preset", "duration_seconds": "duration_seconds", "config": "preset"}


def _errors(exc: QuantdeskError) -> tuple[dict[str, str], list[str]]:
    """The problems beside the fields they name: a seed problem by the seed, other config ones by the preset."""
    if not isinstance(exc, InvalidArgument) or not exc.problems:
        return {}, [f"{exc.kind.replace('_', ' ').capitalize()}: {exc.message}"]
    by_field: dict[str, str] = {}
    general: list[str] = []
    for problem in exc.problems:
        parts = problem.parts()
        field = "seed" if parts[:2] == ["config", "seed"] else _FIELD_OF.get(str(parts[0])) if parts else None
        if field is None:
            general.append(f"{problem.path}: {problem.message}")
            continue
        text = problem.message if field != "preset" or len(parts) < 2 else f"{problem.path}: {problem.message}"
        by_field[field] = f"{by_field[field]}; {text}" if field in by_field else text
    return by_field, general


async def _presets(visit: Visit) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await visit.call("get_presets"))["presets"]
    return found


def _form(visit: Visit, presets: list[dict[str, Any]], values: Mapping[str, str],
          failure: QuantdeskError | None = None) -> HTMLResponse:
    errors, general = _errors(failure) if failure is not None else ({}, [])
    errors = {"preset": "", "duration_seconds": "", "seed": "", **errors}
    chosen = values.get("preset") or next((p["name"] for p in presets if p["name"] == "btc_calm"),
                                          presets[0]["name"] if presets else "")
    return visit.render("datasets_generate.html", presets=presets, chosen=chosen, values=values,
                        errors=errors, general=general, durations=DURATIONS, max_seconds=MAX_SECONDS,
                        default_seconds=DEFAULT_SECONDS, allowed=visit.can("generate_dataset"))


async def _generate_form(visit: Visit) -> Response:
    return _form(visit, await _presets(visit), {})


async def _generate(visit: Visit) -> Response:
    """Run generate_dataset and stream its progress as SSE; a call that fails before its first progress
    (a bad argument) answers with the form again, the problems beside their fields (HTML, status 200: the
    browser would log a 4xx as a console error, and the form post of every other page answers 200 too)."""
    posted = {k: v for k, v in (await visit.request.form()).items() if isinstance(v, str) and k != "_csrf"}
    presets = await _presets(visit)
    try:
        args = _generation_args(posted, presets)
    except InvalidArgument as exc:
        return _form(visit, presets, posted, exc)
    heard: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        heard.put_nowait(("progress", {"done": done, "total": total, "message": message}))

    async def run() -> None:
        ctx = CallContext(visit.principal, visit.ui.state.services, visit.request_id, door="ui", progress=progress)
        try:
            heard.put_nowait(("result", await visit.outcome("generate_dataset", args, ctx)))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the browser, as the form or an event
            heard.put_nowait(("error", exc))

    task = asyncio.create_task(run())
    first = await heard.get()
    if first[0] == "error":
        if isinstance(first[1], QuantdeskError):
            return _form(visit, presets, posted, first[1])
        raise first[1]
    return EventSourceResponse(_stream(visit, first, heard, task), ping=15, headers={"X-Accel-Buffering": "no"})


async def _stream(visit: Visit, first: tuple[str, Any], heard: asyncio.Queue[tuple[str, Any]],
                  task: asyncio.Task[None]) -> AsyncIterator[dict[str, str]]:
    """Progress events, then `result` (the summary as HTML) or `error` (its message); a browser that goes away
    cancels the call, and with it the generation job it waits for."""
    item = first
    try:
        while True:
            kind, value = item
            if kind == "progress":
                yield {"event": "progress", "data": orjson.dumps(value).decode()}
            elif kind == "result":
                outcome: CallOutcome = value
                yield {"event": "result", "data": visit.render_text("datasets_generated.html",
                                                                    result=outcome.structured)}
                return
            else:
                if not isinstance(value, QuantdeskError):
                    logger.error("dataset generation failed", exc_info=value,
                                 extra={"request_id": visit.request_id})
                message = f"{value.kind.replace('_', ' ').capitalize()}: {value.message}" \
                    if isinstance(value, QuantdeskError) else \
                    f"Something failed on the server (request id {visit.request_id})."
                yield {"event": "error", "data": message}
                return
            item = await heard.get()
    finally:
        if not task.done():
            task.cancel()


# --- files --------------------------------------------------------------------------------------------------

async def _chart_png(visit: Visit) -> Response:
    width, height = CHART_SIZES.get(visit.request.query_params.get("size", ""), CHART_SIZES["large"])
    outcome = await visit.outcome("plot_dataset", {"cache_key": visit.request.path_params["cache_key"],
                                                   "width_px": width, "height_px": height})
    image = next(block for block in outcome.content if isinstance(block, ImageBlock))
    # A cache key names one immutable file, so its chart may be kept by this browser.
    return Response(image.data, media_type=image.mime_type, headers={"Cache-Control": "private, max-age=3600"})


async def _download(visit: Visit) -> Response:
    """The Parquet file through export_cache: /artifacts wants the API key in a header, which a browser
    session does not send."""
    outcome = await visit.outcome("export_cache", {"cache_key": visit.request.path_params["cache_key"]})
    block = next(block for block in outcome.content if isinstance(block, FileBlock))
    return FileResponse(block.path, media_type=block.mime_type, filename=block.name)


def _routes(ui: Ui) -> list[BaseRoute]:
    return [
        Route("/datasets/generate", guarded(ui, _generate_form), methods=["GET"]),
        Route("/datasets/generate", guarded(ui, _generate), methods=["POST"]),
        Route("/datasets/{cache_key:str}/chart.png", guarded(ui, _chart_png), methods=["GET"]),
        Route("/datasets/{cache_key:str}/download", guarded(ui, _download), methods=["GET"]),
    ]


def page() -> Page:
    return Page(slug="datasets", title="Datasets", template="datasets.html", order=30, forms=FORMS, routes=_routes,
                panels=(
                    Panel("cache", "datasets_cache.html", _cache, title="Cached datasets"),
                    Panel("chart", "datasets_chart.html", _chart, title="Price, volume and spread"),
                    Panel("describe", "datasets_describe.html", _describe, title="Stylized facts"),
                ))
