"""The dashboard's routes under `/ui`: login, pages and their panels, form posts, the live event stream, files.

Same auth as the API: the key a browser logged in with (or, for a loopback visitor of a server without
keys, the local user). State-changing requests must carry the session's CSRF token, and the cookie is
SameSite=Strict, so another site can neither post nor read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urlsplit

import orjson
from sse_starlette import EventSourceResponse
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from quantdesk.server.context import CallContext
from quantdesk.server.errors import QuantdeskError
from quantdesk.server.http_state import STATUS_BY_KIND, HttpState
from quantdesk.server.settings import is_loopback_host
from quantdesk.server.ui.form_views import answer_post
from quantdesk.server.ui.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER
from quantdesk.server.ui.site import STATIC, LoginNeeded, Ui, Visit, set_session_cookie

logger = logging.getLogger("quantdesk.ui")
Handler = Callable[[Visit], Awaitable[Response]]


def _login_redirect(request: Request, needed: LoginNeeded) -> Response:
    target = f"/ui/login?next={quote(request.url.path + ('?' + request.url.query if request.url.query else ''))}"
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if needed.new_session:
        set_session_cookie(request, response, needed.session)
    return response


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: a login link must not send the browser to another site."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or target.startswith("//"):
        return "/ui/"
    return target


def _credential_from_login(ui: Ui, form: FormData, loopback: bool) -> str:
    """The credential a session keeps: the API key itself, or the password flow's token (it expires)."""
    username = str(form.get("username", "")).strip()
    tokens = ui.state.authenticator.tokens
    if username and tokens is not None:
        return str(tokens.issue(username, str(form.get("password", "")))["access_token"])
    key = str(form.get("key", "")).strip()
    if not key:
        raise ValueError("Enter an API key.")
    ui.state.authenticator.authenticate(key, loopback)
    return key


def guarded(ui: Ui, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        found = ui.visit(request)
        if isinstance(found, LoginNeeded):
            return _login_redirect(request, found)
        visit = found
        if request.method == "POST" and not visit.by_header:
            token = request.headers.get(CSRF_HEADER)
            if token is None:
                token = str((await request.form()).get(CSRF_FIELD, "")) or None
            if not visit.session.csrf_matches(token):
                return visit.finish(visit.render("_error_page.html", status=403, title="Refused",
                                                 message="This form is out of date or came from another site "
                                                         "(CSRF token missing or wrong). Reload the page."))
        try:
            response = await handler(visit)
        except QuantdeskError as exc:
            response = visit.render("_error_page.html", status=STATUS_BY_KIND.get(exc.kind, 400),
                                    title=exc.kind.replace("_", " ").capitalize(), message=exc.message)
        except Exception:
            logger.exception("dashboard request failed", extra={"request_id": visit.request_id,
                                                                "path": request.url.path})
            response = visit.render("_error_page.html", status=500, title="Internal error",
                                    message=f"Something failed on the server (request id {visit.request_id}).")
        return visit.finish(response)

    return endpoint


def ui_mount(state: HttpState) -> Mount:
    ui = Ui(state)

    async def index(request: Request) -> Response:
        return RedirectResponse(f"/ui/{ui.nav_pages()[0].slug}", status_code=303)

    async def login_page(request: Request) -> Response:
        session = ui.sessions.get(request.cookies.get(COOKIE))
        new = session is None
        session = session or ui.sessions.create()
        loopback = request.client is not None and is_loopback_host(request.client.host)
        error = ""
        status = 200
        next_path = _safe_next(request.query_params.get("next"))
        if request.method == "POST":
            form = await request.form()
            if not session.csrf_matches(str(form.get(CSRF_FIELD, "")) or None):
                error, status = "This form is out of date. Try again.", 403
            else:
                next_path = _safe_next(str(form.get("next", "")))
                try:
                    key = _credential_from_login(ui, form, loopback)
                except (QuantdeskError, ValueError) as exc:
                    error, status = getattr(exc, "message", str(exc)), 401
                else:
                    ui.sessions.drop(session.id)  # a new id at login: a session fixed before it is worth nothing
                    fresh = ui.sessions.create(key)
                    response: Response = RedirectResponse(next_path, status_code=303)
                    set_session_cookie(request, response, fresh)
                    return response
        tokens = ui.state.authenticator.tokens
        html = ui.env.get_template("login.html").render(
            csrf=session.csrf, error=error, next=next_path, open_mode=loopback and ui.state.authenticator.open_mode(),
            passwords=tokens is not None and tokens.users.exist())
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if new:
            set_session_cookie(request, response, session)
        return response

    async def logout(visit: Visit) -> Response:
        ui.sessions.drop(visit.session.id)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        visit.new_session = False
        return response

    async def page_view(visit: Visit) -> Response:
        page = ui.page(visit.request.path_params["page"])
        panels = await ui.load_panels(visit, page)
        extra = await page.context(visit) if page.context is not None else {}
        return visit.render(page.template, page=page, panels=panels, **extra)

    async def panel_view(visit: Visit) -> Response:
        page = ui.page(visit.request.path_params["page"])
        name = visit.request.path_params["panel"]
        panel = next((p for p in page.panels if p.name == name), None)
        if panel is None:
            return visit.render("_error_page.html", status=404, title="Not found", message=f"no panel {name!r}")
        return HTMLResponse(await ui.render_panel(visit, page, panel))

    async def form_post(visit: Visit) -> Response:
        spec = ui.form(visit.request.path_params["form"])
        html, succeeded = await answer_post(visit, spec)
        # Panels refresh on success even when the tool publishes nothing on the bus.
        return HTMLResponse(html, headers={"HX-Trigger": "qd-refresh"} if succeeded else {})

    async def tool_form_view(visit: Visit) -> Response:
        return HTMLResponse(ui.form_html(visit, f"tool.{visit.request.path_params['tool']}"))

    async def events(visit: Visit) -> Response:
        """The bus as SSE for this browser, through the same stream_events tool the API serves."""
        ctx = CallContext(visit.principal, ui.state.services, visit.request_id, door="ui")
        stream = await ui.state.registry.open_stream(
            "stream_events", {"duration_seconds": 86_400.0, "max_events": 10**9, "max_queue": 256}, ctx)

        async def messages() -> AsyncIterator[dict[str, str]]:
            try:
                async for event in stream:
                    data = event.model_dump(mode="json", include={"seq", "topic", "symbol"})
                    yield {"data": orjson.dumps(data).decode()}
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return EventSourceResponse(messages(), ping=15, headers={"X-Accel-Buffering": "no"})

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", guarded(ui, logout), methods=["POST"]),
        Route("/events", guarded(ui, events), methods=["GET"]),
        Route("/form/{form:str}", guarded(ui, form_post), methods=["POST"]),
        Route("/tools/form/{tool:str}", guarded(ui, tool_form_view), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="ui-static"),
    ]
    for page in ui.pages:
        if page.routes is not None:
            routes.extend(page.routes(ui))
    routes += [
        Route("/{page:str}", guarded(ui, page_view), methods=["GET"]),
        Route("/{page:str}/panel/{panel:str}", guarded(ui, panel_view), methods=["GET"]),
    ]
    return Mount("/ui", routes=routes)
