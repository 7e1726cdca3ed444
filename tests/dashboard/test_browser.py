"""The dashboard in headless Chromium (Debian's, driven by Playwright): signing in, events
sent with the real Python SDK appearing live in the debugger, filters, pause, a row's
JSON, CSRF refusal; axe-core (from its npm package) run in every page in light and dark,
0 serious violations; a phone-width layout without sideways scrolling; screenshots of
every page written to test-artifacts/dashboard/ for a reviewer."""

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from segment.analytics import Client

from tests.ingest.test_real_clients import CHROMIUM, CHROMIUM_ARGS
from tests.support import Server

REPO = Path(__file__).parents[2]
AXE = REPO / "tests" / "clients" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
SERIOUS = ("serious", "critical")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def sign_in(page: Page, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    page.get_by_label("Admin token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(server.url + path)


def sdk(server: Server) -> Client:
    return Client(server.write_key, host=server.url, sync_mode=True, max_retries=1)


def test_signing_in_from_a_redirect_and_a_wrong_token(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    page.goto(server.url + "/sources")
    expect(page).to_have_url(server.url + "/signin?next=/sources")
    page.get_by_label("Admin token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not an admin token.")
    page.get_by_label("Admin token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(server.url + "/sources")
    expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(server.url + "/signin")
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/signin?next=/")
    page.close()


def test_sdk_events_appear_live_in_the_debugger(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server, "/sources/default")
    live = page.locator("#live")
    expect(live).to_have_text("Live.")
    client = sdk(server)
    first = str(uuid.uuid4())
    client.track("browser-user", "Checkout Started", {"cart": 3}, message_id=first)
    rows = page.locator("#records tbody tr")
    expect(rows.filter(has_text="Checkout Started")).to_have_count(1)
    client.identify("other-user", {"plan": "pro"})
    expect(rows.filter(has_text="other-user")).to_have_count(1)

    # Filters: by event name, by user id, by type.
    page.get_by_label("Event name").fill("checkout")
    expect(rows.locator("visible=true")).to_have_count(1)
    page.get_by_label("Event name").fill("")
    page.get_by_label("User id").fill("other")
    expect(rows.locator("visible=true")).to_have_text([re.compile("identify")])
    page.get_by_label("User id").fill("")
    page.get_by_label("Type").select_option("track")
    expect(rows.locator("visible=true")).to_have_count(1)
    page.get_by_label("Type").select_option("")

    # Pause holds new records; resume shows them.
    page.get_by_role("button", name="Pause").click()
    client.track("browser-user", "While Paused")
    expect(live).to_contain_text("Paused: 1 new event(s) held.")
    expect(rows.filter(has_text="While Paused")).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(rows.filter(has_text="While Paused")).to_have_count(1)

    # A rejected event, with its error; a duplicate.
    client.track("browser-user", "Checkout Started", {"cart": 3}, message_id=first)
    expect(rows.filter(has_text="duplicate")).to_have_count(1)
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        c.post("/v1/track", json={"userId": "browser-user"})
    rejected = rows.filter(has_text="missing_field: 'event' is required for track calls")
    expect(rejected).to_have_count(1)

    # A row opens its full JSON.
    rows.filter(has_text="Checkout Started").filter(has_text="accepted").click()
    detail: dict[str, Any] = json.loads(page.locator("#detail").text_content() or "")
    assert detail["messageId"] == first and detail["properties"] == {"cart": 3}
    rejected.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_contain_text('"status": "rejected"')
    assert errors == []
    page.close()


def test_a_form_without_its_csrf_token_is_refused(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    sign_in(page, server, "/sources")
    form = page.locator("form[action='/sources']")
    form.locator("input[name=csrf]").evaluate("input => input.remove()")
    page.get_by_label("Name").fill("forged")
    with page.expect_response(server.url + "/sources") as response:
        page.get_by_role("button", name="Create").click()
    assert response.value.status == 403
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()
    page.goto(server.url + "/sources")
    expect(page.get_by_role("link", name="forged")).to_have_count(0)
    page.close()


PAGES = {"overview": "/", "sources": "/sources", "debugger": "/sources/default"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_and_is_screenshotted(
    browser: Browser, server: Server, scheme: str
) -> None:
    assert AXE.is_file(), "run npm ci in tests/clients"
    client = sdk(server)
    for n in range(5):
        client.track(f"user-{n}", "Order Completed", {"total": n})
    # axe is injected as a script: this context alone lets it past the page's CSP.
    context = browser.new_context(
        bypass_csp=True, color_scheme=scheme, viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.url + "/signin")
    check_axe(page, "signin")
    page.screenshot(path=ARTIFACTS / f"signin-{scheme}.png")
    sign_in(page, server)
    for name, path in PAGES.items():
        page.goto(server.url + path)
        check_axe(page, name)
        page.screenshot(path=ARTIFACTS / f"{name}-{scheme}.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in PAGES.items():
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways on a phone ({width} px)"
        page.screenshot(path=ARTIFACTS / f"{name}-{scheme}-phone.png")
    context.close()


def check_axe(page: Page, name: str) -> None:
    page.add_script_tag(path=AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]
    assert serious == [], f"{name}: {serious}"
