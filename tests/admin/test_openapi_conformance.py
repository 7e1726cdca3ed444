"""The admin API and its OpenAPI document agree: schemathesis generates requests from
the document a real `trackway serve` publishes (on each storage backend), valid and
invalid ones, and checks every answer against the document (no server error, only
documented statuses, content types and bodies; valid requests accepted, invalid ones
refused). Bounded and seeded, so a run is fast and repeatable."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.openapi import from_url
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support import Server, cli

EXAMPLES = 30
"""Per operation, mode (valid, invalid) and kind of name (generated, an existing one):
about 1,500 requests per backend."""


@pytest.fixture(scope="module")
def hooked(backend_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The server with a webhook destination `hook` (to a local sink that answers 200)."""
    workspace = tmp_path_factory.mktemp("conformance") / "workspace.yaml"
    workspace.write_text(
        """
destinations:
  - name: hook
    type: webhook
    settings:
      url: http://127.0.0.1:9/in
    subscriptions:
      - name: tracks
        action: send
        if: type = "track"
    delivery:
      allow_private_addresses: true
"""
    )
    cli("apply", str(workspace), data_dir=backend_server.data_dir, env=backend_server.env)
    return backend_server


_SEMANTIC = frozenset(
    (
        "/api/v1/sql",
        "/api/v1/destinations/{name}/replay",
        "/api/v1/experiments/{name}/results",
        "/api/v1/experiments/{name}/timeline",
        "/api/v1/goals",
    )
)
"""Operations whose valid requests can still be refused (400): SQL that is no single
read-only statement, a `since` or `as_of` that is no time (`2026-02-30T...`) nor a
duration, a source name that does not exist. JSON Schema cannot say which text is one,
so such a 400 is no disagreement."""


def _existing_names(path: str) -> list[dict[str, str] | None]:
    """Path parameters to test an operation with: generated, and the server's own."""
    # A live stream of an existing source never ends (tests/admin/test_admin_api.py
    # reads it); schemathesis reads whole answers, so it gets only generated names.
    if "{name}" not in path or path.endswith("/stream"):
        return [None]
    return [None, {"name": "hook" if path.startswith("/api/v1/destinations") else "default"}]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(hooked: Server, mode: GenerationMode) -> None:
    schema = from_url(f"{hooked.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {hooked.admin_token}"}
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for names in _existing_names(operation.path):
            try:
                _run(operation, mode, names, headers)
            except Exception as exc:  # one report for every operation that fails
                failures[f"{operation.label} {names or ''}"] = str(exc)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _run(
    operation: Any, mode: GenerationMode, names: dict[str, str] | None, headers: dict[str, str]
) -> None:
    excluded = [positive_data_acceptance] if operation.path in _SEMANTIC else []

    @seed(19)
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=names))
    def call(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    call()
