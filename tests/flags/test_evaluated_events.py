"""OFREP evaluations become "Feature Flag Evaluated" events in a source (through the
normal ingest path): the shape of docs/flag-events.md, deduplicated per user, flag and
variation, sampled by user, stored before the evaluation is answered."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.flags.test_ofrep import run
from tests.support import Server, cli, start_server, until
from trackway.cli import main

KEY = "configcat-sdk-1/TrackwayEventsTest0000/events0000000000000001"
SAMPLED = "configcat-sdk-1/TrackwayEventsTest0000/sampled000000000000001"
WORKSPACE = f"""\
sources:
  - name: backend
flags:
  - environment: events
    sdk_key: {KEY}
    evaluated_events: {{source: backend, window: 1h}}
    settings:
      banner:
        type: string
        value: plain
        rules:
          - when: [{{attribute: Email, comparator: ends with any of, values: ["@staff.io"]}}]
            serve: shiny
            variation_id: v-shiny
  - environment: sampled
    sdk_key: {SAMPLED}
    evaluated_events: {{source: backend, sample: 0.5}}
    settings:
      other: {{type: bool, value: true}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("events")
    (root / "workspace.yaml").write_text(WORKSPACE)
    srv = start_server(root / "data")
    try:
        cli("apply", str(root / "workspace.yaml"), data_dir=srv.data_dir, env=srv.env)
        with srv.client() as http:

            def served() -> int:
                headers = {"X-API-Key": SAMPLED}
                return http.post("/ofrep/v1/evaluate/flags", json={}, headers=headers).status_code

            assert until(served, 200) == 200
        yield srv
    finally:
        srv.stop()


def evaluate(http: httpx.Client, key: str, flag: str, context: dict[str, Any]) -> Any:
    answer = http.post(
        f"/ofrep/v1/evaluate/flags/{flag}",
        json={"context": context},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored(server: Server) -> list[dict[str, Any]]:
    out = run(server, "events", "list", "--source", "backend", "--limit", "500", "--json")
    events: list[dict[str, Any]] = json.loads(out)
    return events


def test_evaluations_are_stored_once_per_user_flag_and_variation(server: Server) -> None:
    alice = {"targetingKey": "alice", "Email": "alice@staff.io", "Plan": "pro"}
    with server.client() as http:
        assert evaluate(http, KEY, "banner", alice)["value"] == "shiny"
        # Stored before the answer (even right after the apply that made the source):
        # no waiting needed.
        first = stored(server)
        evaluate(http, KEY, "banner", alice)  # the same variation again: deduplicated
        evaluate(http, KEY, "banner", {"targetingKey": "bob"})
        evaluate(http, KEY, "banner", {})  # no user: an anonymous id
    tracks = [e for e in first if e["type"] == "track"]
    assert len(tracks) == 1
    track = tracks[0]
    assert track["event"] == "Feature Flag Evaluated"
    assert track["userId"] == "alice"
    assert track["properties"] == {
        "feature_flag_key": "banner",
        "value": "shiny",
        "variation_id": "v-shiny",
        "reason": "TARGETING_MATCH",
        "user": {"Identifier": "alice", "Email": "alice@staff.io", "Plan": "pro"},
    }
    assert track["context"]["integration"] == {"name": "trackway-ofrep", "version": "1.0.0"}
    [identify] = [e for e in first if e["type"] == "identify"]
    assert identify["userId"] == "alice" and identify["traits"]["Email"] == "alice@staff.io"
    events = stored(server)
    tracks = [e for e in events if e["type"] == "track"]
    assert sorted(e.get("userId") or "anonymous" for e in tracks) == ["alice", "anonymous", "bob"]
    anonymous = next(e for e in tracks if "userId" not in e)
    assert anonymous["anonymousId"] and anonymous["properties"]["reason"] == "DEFAULT"
    assert "user" not in anonymous["properties"]


def test_sampling_keeps_some_users_and_all_their_evaluations(server: Server) -> None:
    with server.client() as http:
        for n in range(40):
            for _ in range(2):
                evaluate(http, SAMPLED, "other", {"targetingKey": f"user-{n}"})
    users = [
        e["userId"]
        for e in stored(server)
        if e["type"] == "track" and e["properties"]["feature_flag_key"] == "other"
    ]
    assert 5 < len(users) < 35  # half of 40 by hash; deterministic for these names
    assert len(set(users)) == len(users)  # each sampled user once (the window)


def test_a_bad_events_setting_is_refused_at_apply(tmp_path: Path) -> None:
    bad = WORKSPACE.replace("sample: 0.5", "sample: 2")
    (tmp_path / "w.yaml").write_text(bad)
    result = CliRunner().invoke(main, ["apply", str(tmp_path / "w.yaml"), "--dry-run",
                                       "--data-dir", str(tmp_path / "d")])  # fmt: skip
    assert result.exit_code == 1
    assert "flags[1]: evaluated_events.sample: 2.0 is not in (0, 1]" in result.output


def test_an_unknown_source_does_not_fail_the_evaluation(server: Server, tmp_path: Path) -> None:
    key = "configcat-sdk-1/TrackwayEventsTest0000/nosource00000000000001"
    (tmp_path / "w.yaml").write_text(
        "flags:\n  - environment: nosource\n"
        f"    sdk_key: {key}\n    evaluated_events: {{source: missing}}\n"
        "    settings:\n      f: {type: bool, value: true}\n"
    )
    run(server, "apply", str(tmp_path / "w.yaml"))
    with server.client() as http:

        def call() -> int:
            answer = http.post("/ofrep/v1/evaluate/flags/f", json={}, headers={"X-API-Key": key})
            return answer.status_code

        assert until(call, 200) == 200
