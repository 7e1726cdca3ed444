"""Reverse ETL through the real `trackway` command and server: apply, run, schedule."""

import subprocess
from pathlib import Path

import duckdb
import yaml

from tests.support import TRACKWAY, Server, cli, until
from tests.warehouse.conftest import new_pg_database
from trackway import codec


def test_apply_run_and_schedule_through_the_command(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "crm.duckdb"
    conn = duckdb.connect(str(source))
    conn.execute("CREATE TABLE users AS SELECT 1 AS id, 'wired-1' AS uid, 'pro' AS plan")
    conn.close()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "models:\n"
        "  - name: users\n"
        "    connection: {type: duckdb, path: crm.duckdb}\n"
        "    query: SELECT * FROM users\n"
        "    primary_key: id\n"
        "syncs:\n"
        "  - name: by-hand\n"
        "    model: users\n"
        "    type: identify\n"
        "    user_id: uid\n"
        "    mapping: {plan: plan}\n"
        "  - name: scheduled\n"
        "    model: users\n"
        "    type: segment\n"
        "    user_id: uid\n"
        "    send_initial: true\n"
        "    schedule: {interval: 1h}\n"
    )
    applied = cli("apply", str(workspace), data_dir=server.data_dir)
    assert "create model 'users'" in applied and "create sync 'scheduled'" in applied
    assert cli("apply", str(workspace), data_dir=server.data_dir).strip() == "Nothing to change."
    ran = codec.loads(
        cli(
            "syncs",
            "run",
            "by-hand",
            "--json",
            "--data-plane",
            server.url,
            data_dir=server.data_dir,
        )
    )
    assert (ran["status"], ran["sent"]) == ("succeeded", 1)

    def names() -> list[str]:
        return sorted(e.get("event", e["type"]) for e in server.events())

    # The server's worker runs the scheduled sync by itself.
    assert until(names, ["Segment Entered", "identify"]) == ["Segment Entered", "identify"]
    history = codec.loads(cli("syncs", "runs", "scheduled", "--json", data_dir=server.data_dir))
    assert [(r["trigger"], r["status"]) for r in history] == [("schedule", "succeeded")]
    # and says so on its console, one line per run
    assert (
        until(lambda: [line for line in server.banner if line.startswith("sync 'scheduled': ")], 1)
        != []
    )
    (line,) = [line for line in server.banner if line.startswith("sync 'scheduled': ")]
    assert line.startswith("sync 'scheduled': run 1 (schedule) succeeded ")
    assert line.endswith("sent 1, failed 0, rejected 0")

    bad = workspace.read_text().replace("{plan: plan}", "{colour: colour}")
    workspace.write_text(bad)
    done = subprocess.run(
        [*TRACKWAY, "apply", str(workspace), "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "sync 'by-hand': model 'users' has no column 'colour'" in done.stderr


def test_models_on_trackways_warehouses_resolve_tables_as_trackway_sql_does(
    server: Server, tmp_path: Path
) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "reverse-etl.md").read_text()
    documented = yaml.safe_load(docs.split("```yaml\n", 1)[1].split("```", 1)[0])
    [model] = [m for m in documented["models"] if m["name"] == "big_spenders"]
    assert "FROM order_completed" in model["query"]  # unqualified: schema default_
    with new_pg_database() as pg_url:
        workspace = tmp_path / "workspace.yaml"
        warehouses = [
            {"name": "default", "interval_s": 0.2},
            {"name": "analytics", "type": "postgres", "url": pg_url, "interval_s": 0.2},
        ]
        workspace.write_text(yaml.safe_dump({"warehouses": warehouses}))
        cli("apply", str(workspace), data_dir=server.data_dir)
        batch = [
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "properties": {"total": t},
            }
            for user, t in (("ada", 300.5), ("ada", 250), ("bob", 100))
        ]
        with server.client() as http:
            sent = http.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, ""))
            assert sent.status_code == 200

        def loaded(warehouse: str) -> str:
            query = "SELECT count(*) AS n FROM order_completed"
            args = ("sql", query, "--format", "csv", "--warehouse", warehouse)
            return cli(*args, data_dir=server.data_dir, check=False)

        for warehouse in ("default", "analytics"):
            assert until(lambda w=warehouse: loaded(w), "n\n3\n") == "n\n3\n", warehouse
        # The documented model as it is, and the same query on the PostgreSQL warehouse.
        twin = {
            **model,
            "name": "big_spenders_pg",
            "connection": {"type": "postgres", "url": pg_url},
        }
        workspace.write_text(yaml.safe_dump({"models": [model, twin]}))
        applied = cli("apply", str(workspace), data_dir=server.data_dir)
        assert "create model 'big_spenders'" in applied, applied
        assert "create model 'big_spenders_pg'" in applied, applied
        for name in ("big_spenders", "big_spenders_pg"):
            preview = codec.loads(
                cli("models", "preview", name, "--json", data_dir=server.data_dir)
            )
            assert preview["rows"] == [{"user_id": "ada", "total": 550.5}], name
