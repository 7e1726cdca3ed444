"""Signing in to the dashboard of a real `trackway serve`: the session cookie, CSRF on
every POST, redirects, the rate limit on wrong tokens, and the security headers."""

from tests.dashboard.support import HTML, csrf_of, sign_in, signed_in
from tests.support import Server
from trackway.dashboard.app import CSP


def test_a_signed_out_browser_is_sent_to_sign_in_and_back(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.get("/", headers=HTML)
        assert (r.status_code, r.headers["location"]) == (303, "/signin?next=/")
        page = c.get("/signin?next=/")
        assert page.status_code == 200
        assert '<label for="token">Admin token</label>' in page.text
        r = c.post(
            "/signin?next=/",
            data={"csrf": csrf_of(page.text), "token": shared_server.admin_token},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/")
        assert c.get("/").status_code == 200
        # Signed in, the sign-in page goes on to the page asked for.
        assert c.get("/signin?next=/").headers["location"] == "/"


def test_a_signed_out_script_gets_401_not_a_redirect(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.get("/")
        assert r.status_code == 401
        r = c.post("/signout", headers=HTML)
        assert r.status_code == 401


def test_the_session_cookie_is_httponly_and_strict(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = sign_in(c, shared_server.admin_token)
        cookie = next(h for h in r.headers.get_list("set-cookie") if "trackway_session=" in h)
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Max-Age=43200" in cookie  # sessions expire (12 h)
        assert shared_server.admin_token not in cookie


def test_a_wrong_token_is_a_clear_error(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = sign_in(c, "not-the-token")
        assert r.status_code == 401
        assert "That is not an admin token." in r.text
        assert 'role="alert"' in r.text
        assert c.get("/").status_code == 401  # no session


def test_too_many_wrong_tokens_are_refused_with_429(server: Server) -> None:
    with server.client() as c:
        for _ in range(5):
            assert sign_in(c, "wrong").status_code == 401
        r = sign_in(c, "wrong")
        assert r.status_code == 429
        assert "Too many wrong tokens" in r.text
        assert 0 < int(r.headers["retry-after"]) <= 60
        # Even the right token waits: guessing on is no use.
        assert sign_in(c, server.admin_token).status_code == 429


def test_sign_in_without_its_csrf_token_is_refused(shared_server: Server) -> None:
    with shared_server.client() as c:
        c.get("/signin")
        r = c.post("/signin", data={"token": shared_server.admin_token})
        assert r.status_code == 403
        assert "CSRF" in r.text
        r = c.post("/signin", data={"csrf": "forged", "token": shared_server.admin_token})
        assert r.status_code == 403
        assert c.get("/").status_code == 401


def test_a_post_without_the_sessions_csrf_token_is_refused(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        assert c.post("/signout").status_code == 403
        assert c.post("/signout", data={"csrf": "forged"}).status_code == 403
        assert c.get("/").status_code == 200  # still signed in: nothing was done


def test_sign_out_ends_the_session(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        cookie = c.cookies["trackway_session"]
        r = c.post("/signout", data={"csrf": csrf_of(c.get("/").text)})
        assert (r.status_code, r.headers["location"]) == (303, "/signin")
    with shared_server.client() as other:  # the old cookie, replayed
        other.cookies.set("trackway_session", cookie)
        assert other.get("/", headers=HTML).status_code == 303


def test_next_never_leaves_the_server(shared_server: Server) -> None:
    with shared_server.client() as c:
        for target in ("//evil.example/", "https://evil.example/"):
            form = c.get("/signin", params={"next": target})
            r = c.post(
                "/signin",
                params={"next": target},
                data={"csrf": csrf_of(form.text), "token": shared_server.admin_token},
            )
            assert r.headers["location"] == "/"
            c.cookies.clear()


def test_pages_carry_a_strict_csp_and_load_only_own_assets(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        for path in ("/", "/signin"):
            r = c.get(path, headers=HTML, follow_redirects=True)
            assert r.headers["content-security-policy"] == CSP
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
            assert "<script>" not in r.text and " style=" not in r.text
            assert "//" not in "".join(part.split('"')[1] for part in r.text.split("src=")[1:])
        assert c.get("/assets/dashboard.css").status_code == 200


def test_the_admin_api_still_wants_its_bearer_token(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        assert c.get("/api/v1/overview").status_code == 401  # the cookie is not enough
        r = c.get(
            "/api/v1/overview", headers={"authorization": f"Bearer {shared_server.admin_token}"}
        )
        assert r.status_code == 200
