"""Rendering a form and answering its post: the tool's problems shown beside the fields they name."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quantdesk.server.errors import InvalidArgument, QuantdeskError
from quantdesk.server.registry import CallOutcome, ImageBlock
from quantdesk.server.ui.forms import FormSpec, arguments_from_form, errors_by_field, field_views

if TYPE_CHECKING:
    from quantdesk.server.ui.site import Visit


def render_form(visit: Visit, spec: FormSpec, *, values: Mapping[str, Any] | None = None,
                errors: Mapping[str, str] | None = None, general: list[str] | None = None,
                outcome: CallOutcome | None = None, failure: QuantdeskError | None = None) -> str:
    entry = visit.ui.state.registry.get_tool(spec.tool)
    fields = field_views(spec, entry.input_schema, values, errors)
    images = [f"data:{block.mime_type};base64,{base64.b64encode(block.data).decode()}"
              for block in (outcome.content if outcome else ()) if isinstance(block, ImageBlock)]
    return visit.render_text("_form.html", spec=spec, entry=entry, fields=fields, general=general or [],
                             outcome=outcome, failure=failure, images=images,
                             allowed=visit.principal.allows(entry.scope), values=values or {})


async def answer_post(visit: Visit, spec: FormSpec) -> tuple[str, bool]:
    """Call the form's tool with the posted values; the form again, with the result or the problems.
    The flag says whether the call succeeded (the page then refreshes its panels)."""
    entry = visit.ui.state.registry.get_tool(spec.tool)
    posted = {key: value for key, value in (await visit.request.form()).items() if isinstance(value, str)}
    args, problems = arguments_from_form(spec, entry.input_schema, posted)
    if problems:
        errors, general = errors_by_field(spec, entry.input_schema, problems)
        return render_form(visit, spec, values=posted, errors=errors, general=general), False
    try:
        outcome = await visit.outcome(spec.tool, args)
    except InvalidArgument as exc:
        errors, general = errors_by_field(spec, entry.input_schema, exc.problems)
        if not exc.problems:
            general = [exc.message]
        return render_form(visit, spec, values=posted, errors=errors, general=general), False
    except QuantdeskError as exc:
        return render_form(visit, spec, values=posted, failure=exc), False
    kept = {name: posted[name] for name in spec.hidden if name in posted}
    return render_form(visit, spec, values=posted if spec.result == "full" else kept, outcome=outcome), True
