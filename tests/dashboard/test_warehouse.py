"""The Warehouse pages on a real server, on a DuckDB and a PostgreSQL warehouse: each
warehouse's status and its tables as their JSON twins answer them, and the SQL console
(through the session, CSRF-checked) answering what `POST /api/v1/sql` answers: the rows,
the query's time, a CSV download, errors verbatim, and nothing but read-only
statements."""

import csv
import html
import io
import re
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics import Client

from tests.dashboard.support import HTML, csrf_of, signed_in
from tests.support import Server, cli, until
from tests.warehouse.conftest import new_pg_database


def api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}/api/v1/{path}",
        headers={"authorization": f"Bearer {server.admin_token}"},
        timeout=30,
        **kwargs,
    )


@pytest.fixture(params=["duckdb", "postgres"])
def loaded(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> Iterator[str]:
    """The name of a warehouse of `server` into which three `Bought` events were loaded:
    the default DuckDB one, or a PostgreSQL one declared with `trackway apply`."""
    with new_pg_database() if request.param == "postgres" else nullcontext() as url:
        name = "default"
        if url:
            name = "pg"
            workspace = tmp_path / "workspace.yaml"
            workspace.write_text(
                f"warehouses:\n  - {{name: pg, type: postgres, url: '{url}', interval_s: 0.2}}\n"
            )
            cli("apply", str(workspace), data_dir=server.data_dir)
        sdk = Client(server.write_key, host=server.url, sync_mode=True, max_retries=1)
        for n in range(3):
            sdk.track(f"buyer-{n}", "Bought", {"price": n + 0.5}, message_id=f"bought-{n}")

        def loaded_events() -> int:
            shown = {w["name"]: w for w in api(server, "GET", "warehouses").json()}
            return int(shown.get(name, {}).get("events_loaded", 0))

        until(loaded_events, 3, seconds=30)
        yield name


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def test_status_and_tables_show_their_twins(server: Server, loaded: str) -> None:
    status = next(w for w in api(server, "GET", "warehouses").json() if w["name"] == loaded)
    tables = api(server, "GET", f"warehouses/{loaded}/tables").json()
    bought = next(t for t in tables["tables"] if t["table"] == "bought")
    with signed_in(server) as c:
        listing = c.get("/warehouse", headers=HTML)
        page = c.get(f"/warehouse/{loaded}", headers=HTML)
    assert listing.status_code == page.status_code == 200
    section = listing.text.split(f'<a href="/warehouse/{loaded}">{loaded}</a>')[1]
    section = section.split("</section>")[0]
    assert f"{status['lag_events']:,} events ({status['lag_seconds']} s)" in section
    assert status["last_load"]["at"] in section
    assert f"{status['events_loaded']:,} events" in section
    assert "<dt>Rejected values</dt><dd>0</dd>" in section
    assert 'href="/api/v1/warehouses"' in listing.text  # the twin named at its foot

    row = re.search(r"<th scope=\"row\">bought</th>.*?</tr>", page.text, re.DOTALL)
    assert row, page.text
    assert f'<td class="num">{bought["rows"]:,}</td>' in row.group(0)
    for column in bought["columns"]:
        assert f'<code>{column["name"]}</code> <span class="hint">{column["type"]}</span>' in (
            row.group(0)
        )
    assert f'href="/api/v1/warehouses/{loaded}/tables"' in page.text


def console(c: httpx.Client, name: str, sql: str, **fields: str) -> httpx.Response:
    token = csrf_of(c.get(f"/warehouse/{name}", headers=HTML).text)
    data = {"csrf": token, "sql": sql, **fields}
    return c.post(f"/warehouse/{name}/sql", data=data, headers=HTML)


def test_the_console_answers_what_the_sql_endpoint_answers(server: Server, loaded: str) -> None:
    query = "SELECT user_id, price FROM bought ORDER BY user_id"
    want = api(server, "POST", "sql", json={"sql": query, "warehouse": loaded}).json()
    assert want["rows"] == [["buyer-0", 0.5], ["buyer-1", 1.5], ["buyer-2", 2.5]]
    with signed_in(server) as c:
        page = console(c, loaded, query, format="json")
        assert page.status_code == 200
        table = page.text.split('<table id="sql-result">')[1].split("</table>")[0]
        heads = re.findall(r'<th scope="col">([^<]*)</th>', table)
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in table.split("<tr>")[2:]]
        assert heads == want["columns"]
        assert cells == [[str(v) for v in r] for r in want["rows"]]
        status = text_of(page.text.split('id="sql-status">')[1].split("</p>")[0])
        assert re.fullmatch(r"3 row\(s\)\s+in [0-9.]+ ms\.", status), status
        assert html.escape(query, quote=False) in page.text  # the query stays in the box

        two = console(c, loaded, query, format="json", max_rows="2")
        assert "(truncated: more rows than asked for)" in two.text

        download = console(c, loaded, query, format="csv")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert 'filename="result.csv"' in download.headers["content-disposition"]
        assert float(download.headers["x-elapsed-ms"]) >= 0
        rows = list(csv.reader(io.StringIO(download.text)))
        assert rows == [["user_id", "price"], ["buyer-0", "0.5"], ["buyer-1", "1.5"],
                        ["buyer-2", "2.5"]]  # fmt: skip


REFUSED = [
    "SELECT nope FROM bought",
    "DELETE FROM bought",
    "DROP TABLE bought",
    "SELECT 1; DROP TABLE bought",
    "CREATE TABLE stolen AS SELECT * FROM bought",
]


def test_errors_are_verbatim_and_nothing_is_written(server: Server, loaded: str) -> None:
    with signed_in(server) as c:
        for sql in REFUSED:
            refused = api(server, "POST", "sql", json={"sql": sql, "warehouse": loaded})
            assert refused.status_code == 400, sql
            page = console(c, loaded, sql, format="json")
            assert page.status_code == 400, sql
            shown = page.text.split('id="sql-error">')[1].split("</pre>")[0]
            assert html.unescape(shown) == refused.json()["message"], sql
    count = {"sql": "SELECT count(*) FROM bought", "warehouse": loaded}
    assert api(server, "POST", "sql", json=count).json()["rows"] == [[3]]
    tables = api(server, "GET", f"warehouses/{loaded}/tables").json()["tables"]
    assert "stolen" not in {t["table"] for t in tables}


def test_the_console_needs_the_session_and_its_csrf_token(shared_server: Server) -> None:
    server = shared_server
    data = {"sql": "SELECT 1", "format": "json"}
    with server.client() as c:
        assert c.post("/warehouse/default/sql", data=data).status_code == 401
    with signed_in(server) as c:
        forged = c.post("/warehouse/default/sql", data={**data, "csrf": "x" + uuid.uuid4().hex})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        missing = c.get("/warehouse/nope", headers=HTML)
        assert missing.status_code == 404
        assert "no warehouse named &#39;nope&#39;" in missing.text
