"""`GET /` of a worker process (the API processes serve the dashboard there, see
tests/dashboard); unknown paths and methods answer JSON errors like the APIs."""

import re
from pathlib import Path

import pytest

from tests.support import Server
from trackway.server.landing import DOCS, landing_page

REPO = Path(__file__).parent.parent.parent


def test_a_worker_process_lists_what_it_serves() -> None:
    page = landing_page().body.decode()
    assert re.findall(r'href="([^"]+)"', page) == ["/health", "/ready", "/metrics"]
    assert "/v1" not in page
    assert not re.search(r"(src|href)=\"?(https?:)?//", page), "no external assets"


def test_the_landing_page_names_docs_that_exist() -> None:
    page = landing_page().body.decode()
    for path, _ in DOCS:
        assert (REPO / path).is_file(), path
        assert f"<code>{path}</code>" in page


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/api/v1/nope", "/health/x"])
def test_an_unknown_path_is_a_json_404(shared_server: Server, path: str) -> None:
    with shared_server.client() as c:
        r = c.get(path)
    assert r.status_code == 404
    assert r.json() == {
        "code": "not_found",
        "message": f"nothing at {path} (see / for what is here)",
    }


def test_a_wrong_method_is_a_json_405(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.get("/v1/track")
        assert r.status_code == 405
        assert r.json() == {
            "code": "method_not_allowed",
            "message": "GET is not allowed on /v1/track",
        }
        assert "POST" in r.headers["allow"]
        assert c.delete("/health").json()["code"] == "method_not_allowed"
