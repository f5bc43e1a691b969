"""The dashboard's frame: who is visiting, calling tools on their behalf, pages made of live panels, forms.

A page is a list of panels; each panel calls tools and renders one template. The page renders every panel
at once, and each panel can render again alone (`/ui/<page>/panel/<name>`) when the event bus reports one
of its topics, so nothing polls. Every action is a form bound to a tool (forms.py) and goes through the
registry like any other door: same validation, same scopes, same errors.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from quantdesk.server.auth import credential_from_headers
from quantdesk.server.context import CallContext, Principal
from quantdesk.server.errors import NotFound, QuantdeskError
from quantdesk.server.http_front import scope_headers
from quantdesk.server.http_state import HttpState
from quantdesk.server.logs import new_request_id
from quantdesk.server.registry import CallOutcome
from quantdesk.server.settings import is_loopback_host
from quantdesk.server.ui.format import FILTERS
from quantdesk.server.ui.forms import FormSpec, tool_form
from quantdesk.server.ui.sessions import COOKIE, Session, Sessions

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass(frozen=True, slots=True)
class Panel:
    """One live part of a page: what it loads, how it renders, and which bus topics make it render again."""

    name: str
    template: str
    load: Callable[[Visit], Awaitable[Mapping[str, Any]]]
    topics: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    slug: str
    title: str
    template: str
    panels: tuple[Panel, ...]
    forms: tuple[FormSpec, ...] = ()
    order: int = 50
    routes: Callable[[Ui], list[BaseRoute]] | None = None
    nav: bool = True
    context: Callable[[Visit], Awaitable[Mapping[str, Any]]] | None = None
    """What the page template needs outside its panels (a form's choices, say)."""


@dataclass(slots=True)
class Visit:
    """One request from a browser: its session, the principal its key resolves to, and the tools it may call."""

    ui: Ui
    request: Request
    session: Session
    principal: Principal
    new_session: bool
    by_header: bool = False
    """The key came in a header (a script, curl): no cookie, so no cross-site request can carry it."""
    request_id: str = field(default_factory=new_request_id)

    def can(self, tool: str) -> bool:
        registry = self.ui.state.registry
        return registry.has_tool(tool) and self.principal.allows(registry.get_tool(tool).scope)

    async def outcome(self, tool: str, args: Mapping[str, Any] | None = None,
                      ctx: CallContext | None = None) -> CallOutcome:
        ctx = ctx or CallContext(self.principal, self.ui.state.services, self.request_id, door="ui")
        return await self.ui.state.registry.call_tool(tool, dict(args or {}), ctx)

    async def call(self, tool: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return (await self.outcome(tool, args)).structured

    def render_text(self, template: str, **context: Any) -> str:
        base = {"visit": self, "principal": self.principal, "csrf": self.session.csrf,
                "pages": self.ui.nav_pages(), "form": self.ui.form_html}
        return self.ui.env.get_template(template).render(**base, **context)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.render_text(template, **context), status_code=status)

    def finish(self, response: Response) -> Response:
        """Set the session cookie when the session is new; pages are never cached (they show live state)."""
        if self.new_session:
            set_session_cookie(self.request, response, self.session)
        response.headers.setdefault("Cache-Control", "no-store")
        return response


@dataclass(frozen=True, slots=True)
class LoginNeeded:
    session: Session
    new_session: bool
    reason: str


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", secure=secure, path="/ui")


class Ui:
    def __init__(self, state: HttpState) -> None:
        self.state = state
        self.sessions = Sessions()
        self._forms: dict[str, FormSpec] = {}
        self._env: Environment | None = None
        self.pages: list[Page] = sorted(_discover_pages(self), key=lambda p: (p.order, p.slug))
        for page in self.pages:
            for spec in page.forms:
                self.add_form(spec)

    @property
    def env(self) -> Environment:
        """The template environment, made on the first page view (jinja2 stays out of the start-up path)."""
        if self._env is None:
            from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

            env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
            env.filters.update(FILTERS)
            env.filters["json"] = lambda value: orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
            env.globals["chart"] = chart_data
            self._env = env
        return self._env

    def nav_pages(self) -> list[Page]:
        return [page for page in self.pages if page.nav]

    def page(self, slug: str) -> Page:
        for page in self.pages:
            if page.slug == slug:
                return page
        raise NotFound(f"no dashboard page {slug!r}")

    def add_form(self, spec: FormSpec) -> FormSpec:
        if spec.id in self._forms and self._forms[spec.id] != spec:
            raise ValueError(f"two dashboard forms are called {spec.id!r}")
        self.state.registry.get_tool(spec.tool)  # a form bound to a tool that does not exist fails at start
        self._forms[spec.id] = spec
        return spec

    def form(self, form_id: str) -> FormSpec:
        spec = self._forms.get(form_id)
        if spec is None and form_id.startswith("tool.") and self.state.registry.has_tool(form_id[5:]):
            spec = tool_form(form_id[5:])
        if spec is None:
            raise NotFound(f"no dashboard form {form_id!r}")
        return spec

    def form_html(self, visit: Visit, form_id: str, values: Mapping[str, Any] | None = None,
                  **extra: Any) -> str:
        """A form as a page shows it; `values` fill hidden fields (a row's order id) or preset others."""
        from markupsafe import Markup

        from quantdesk.server.ui.form_views import render_form

        return Markup(render_form(visit, self.form(form_id), values=values, **extra))

    def visit(self, request: Request) -> Visit | LoginNeeded:
        """Who is asking, or why they must log in first (no key, or a key since revoked)."""
        header_key = credential_from_headers(scope_headers(request.scope))
        session = self.sessions.get(request.cookies.get(COOKIE))
        new = session is None
        if session is None:
            session = self.sessions.create()
        loopback = request.client is not None and is_loopback_host(request.client.host)
        credential = header_key or session.credential
        try:
            principal = self.state.authenticator.authenticate(credential, loopback)
        except QuantdeskError as exc:
            return LoginNeeded(session, new, exc.message if credential else "")
        return Visit(self, request, session, principal, new, by_header=header_key is not None)

    async def load_panels(self, visit: Visit, page: Page, names: tuple[str, ...] | None = None) -> dict[str, str]:
        """Every panel of a page rendered, concurrently; a panel that fails shows its error, not a broken page."""
        panels = [p for p in page.panels if names is None or p.name in names]
        rendered = await asyncio.gather(*(self.render_panel(visit, page, panel) for panel in panels))
        return dict(zip((p.name for p in panels), rendered, strict=True))

    async def render_panel(self, visit: Visit, page: Page, panel: Panel) -> str:
        try:
            data = await panel.load(visit)
            inner = visit.render_text(panel.template, **data)
        except QuantdeskError as exc:
            inner = visit.render_text("_error.html", error=exc)
        query = visit.request.url.query
        return visit.render_text("_panel.html", page=page, panel=panel, inner=inner,
                                 query=f"?{query}" if query else "")


def chart_data(title: str, x: list[float], series: list[Mapping[str, Any]], *, time_axis: bool = True,
               x_label: str = "", height: int = 220) -> str:
    """A chart as a data island that static/app.js draws with uPlot; the title doubles as its accessible name."""
    from markupsafe import Markup, escape

    spec = {"title": title, "x": x, "series": list(series), "time": time_axis, "xLabel": x_label,
            "height": height}
    payload = orjson.dumps(spec, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return Markup(f'<figure class="chart" data-chart="{escape(payload)}" role="img" aria-label="{escape(title)}">'
                  f"<figcaption>{escape(title)}</figcaption></figure>")


def _discover_pages(ui: Ui) -> list[Page]:
    """Each module of `quantdesk.server.ui.pages` contributes one page through its `page()` function."""
    from quantdesk.server.ui import pages

    found = []
    for info in pkgutil.iter_modules(pages.__path__):
        module = importlib.import_module(f"{pages.__name__}.{info.name}")
        make: Callable[[], Page] | None = getattr(module, "page", None)
        if make is not None:
            found.append(make())
    return found
