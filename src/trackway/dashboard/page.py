"""What a dashboard page is, and what it gets to build its routes: the storage, the
settings and `render`."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute

from trackway.dashboard import charts
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore


@dataclass(frozen=True)
class Page:
    """One page of the navigation. `path` is where it lives (its routes may add paths
    under it), `twin` the admin API route whose data it shows (the page shows nothing
    that route does not answer), `order` its place in the navigation."""

    path: str
    title: str
    twin: str
    order: int
    routes: "Callable[[Dashboard], list[BaseRoute]]"


@dataclass
class Dashboard:
    """Handed to each page's `routes`: the workspace and how to answer with a template."""

    store: StateStore
    log: EventLog
    settings: Settings
    nav: list[Page] = field(default_factory=list)
    _templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("trackway.dashboard"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates.globals.update(bars=charts.bars, has_page=self.has_page)

    def has_page(self, path: str) -> bool:
        """Whether a page lives at `path`, for links to pages other packages add."""
        return any(page.path == path for page in self.nav)

    def render(
        self, request: Request, template: str, page: Page | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """The template with the layout's context: the navigation, the page and its JSON
        twin, the session's CSRF token for forms (empty when signed out)."""
        session = getattr(request.state, "session", None)
        html = self._templates.get_template(template).render(
            nav=self.nav,
            page=page,
            csrf=session.csrf if session else "",
            signed_in=session is not None,
            origin=f"{request.url.scheme}://{request.url.netloc}",
            **context,
        )
        return HTMLResponse(html, status)
