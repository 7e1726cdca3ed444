"""The Warehouse and Reverse ETL pages in headless Chromium (as `test_browser.py`):
a SQL query run from the console, its error shown verbatim; axe-core in light and dark
(0 serious violations), no sideways scrolling at 390 px, screenshots to
test-artifacts/dashboard/."""

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.test_browser import ARTIFACTS, browser, check_axe, sdk, sign_in
from tests.support import Server, until

__all__ = ["browser"]

pytestmark = pytest.mark.slow


def loaded_events(server: Server) -> Callable[[], int]:
    def events() -> int:
        r = httpx.get(
            f"{server.url}/api/v1/warehouses",
            headers={"authorization": f"Bearer {server.admin_token}"},
            timeout=10,
        )
        return int(r.json()[0]["events_loaded"])

    return events


def screens(page: Page, server: Server, name: str, scheme: str) -> None:
    """axe-core on the page as it is, then screenshots at 1280 px and phone width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    check_axe(page, name)
    page.screenshot(path=ARTIFACTS / f"{name}-{scheme}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} scrolls sideways on a phone ({width} px)"
    page.screenshot(path=ARTIFACTS / f"{name}-{scheme}-phone.png")
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_sql_query_from_the_console(browser: Browser, server: Server, scheme: str) -> None:
    client = sdk(server)
    for n in range(4):
        client.track(f"user-{n}", "Order Completed", {"total": n})
    until(loaded_events(server), 4, seconds=30)
    context = browser.new_context(
        bypass_csp=True, color_scheme=scheme, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server, "/warehouse")
    expect(page.get_by_text("4 events, ")).to_be_visible()
    screens(page, server, "warehouse", scheme)

    page.get_by_role("link", name="default", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("order_completed"))).to_be_visible()
    page.get_by_label("One read-only statement").fill(
        "SELECT user_id, total FROM order_completed ORDER BY total"
    )
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"4 row\(s\)\s+in [0-9.]+ ms\."))
    rows = page.locator("#sql-result tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_have_text(re.compile("user-0\\s*0"))
    screens(page, server, "warehouse-sql", scheme)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "result.csv"

    page.get_by_label("One read-only statement").fill("DELETE FROM order_completed")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert")).to_have_text(
        "only SELECT (and EXPLAIN) statements are allowed"
    )
    assert errors == []
    context.close()
