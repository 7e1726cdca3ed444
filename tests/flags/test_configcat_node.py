"""The official ConfigCat SDK for Node (`@configcat/sdk`, tests/clients) evaluates configs
served by a real `trackway serve`: every cell of ConfigCat's test matrices
(tests/flags/data/matrix, see its README) gives the matrix's value, and its auto polling
gets 304s while the config is unchanged and the new value after a change."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.flags.sdk_oracle import matrix
from tests.flags.test_configcat_sdk import import_config, new_key, wait_served
from tests.flags.test_evaluate import MATRICES, shows
from tests.support import Server, cli
from trackway.flags.evaluate import User

CLIENTS = Path(__file__).parents[1] / "clients"
SCRIPT = CLIENTS / "configcat_node.mjs"
DATA = Path(__file__).parent / "data"


def node(*args: str) -> subprocess.Popen[str]:
    binary = shutil.which("node")
    assert binary, "Node.js is required (make tests/clients/node_modules/.installed)"
    return subprocess.Popen(
        [binary, str(SCRIPT), *args],
        cwd=CLIENTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def sdk_user(user: User | None) -> dict[str, Any] | None:
    """The user as the JS SDK's `User(identifier, email, country, custom)` takes it."""
    if user is None:
        return None
    attrs = dict(user.attributes)
    attrs.pop("Identifier", None)
    return {
        "identifier": user.identifier,
        "email": attrs.pop("Email", None),
        "country": attrs.pop("Country", None),
        "custom": attrs,
    }


def test_every_matrix_cell_evaluates_as_the_matrix_says(
    flag_server: Server, tmp_path: Path
) -> None:
    jobs, cells = [], []
    for config, name in MATRICES:
        key = new_key()
        import_config(flag_server, DATA / "matrix" / config, key, f"node-{config.split('.')[0]}")
        wait_served(flag_server, key)
        rows = list(matrix(name))
        cells.append((name, rows))
        jobs.append(
            {"sdkKey": key, "cells": [{"key": c.key, "user": sdk_user(c.user)} for c in rows]}
        )
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    process = node("eval", flag_server.url, str(tmp_path / "jobs.json"))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    results = json.loads(out)
    wrong, total = [], 0
    for (name, rows), got in zip(cells, results, strict=True):
        by_id = "variation" in name.lower()
        for cell, answer in zip(rows, got, strict=True):
            total += 1
            value = answer["variationId"] if by_id else answer["value"]
            if not shows(value, cell.expected) or answer["error"]:
                wrong.append((name, cell.row, cell.key, cell.expected, answer))
    assert total > 15_000  # every cell of the 7 matrices
    assert wrong == []


def test_auto_polling_gets_304_until_a_change_arrives(flag_server: Server, tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "f.yaml"

    def write(value: str) -> None:
        path.write_text(
            f"flags:\n  - environment: node-polled\n    sdk_key: {key}\n    settings:\n"
            f"      banner: {{type: string, value: {value}}}\n"
        )
        cli("apply", str(path), data_dir=flag_server.data_dir, env=flag_server.env)

    write("old")
    wait_served(flag_server, key)
    process = node("poll", flag_server.url, key, "banner", "new")
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["ready"][0] == 200 and set(ready["ready"][1:]) == {304}, ready
        write("new")
        final = json.loads(process.stdout.readline())
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert final["value"] == "new"
    statuses = final["statuses"]
    # 200 for the first download and for the change, 304 for every other poll.
    assert statuses[0] == 200 and statuses.count(200) == 2 and set(statuses) == {200, 304}
    assert final["changed"] == 2  # the SDK's configChanged: the first download and the change
