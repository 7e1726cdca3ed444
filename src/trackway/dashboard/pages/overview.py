"""Overview: the workspace at a glance (`GET /api/v1/overview`)."""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trackway.admin.overview import overview
from trackway.dashboard.page import Dashboard, Page


def _routes(dash: Dashboard) -> list[BaseRoute]:
    async def show(request: Request) -> Response:
        data = await run_in_threadpool(overview, dash.store, dash.log, dash.settings)
        return dash.render(request, "overview.html", PAGE, data=data)

    return [Route("/", show, methods=["GET"])]


PAGE = Page(path="/", title="Overview", twin="/api/v1/overview", order=0, routes=_routes)
