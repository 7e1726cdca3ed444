"""OFREP on a real `trackway serve`, driven by OpenFeature's OFREP provider (unmodified):
the same answers as the official ConfigCat SDK on the same configs; errors and statuses
as the protocol says; `trackway flags evaluate` on the same data."""

import json
import math
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails

from tests.flags.sdk_oracle import DATA, Oracle, matrix
from tests.flags.test_evaluate import rich_config, users
from tests.support import Server, cli, start_server, until
from trackway.cli import main
from trackway.flags.evaluate import User, evaluate
from trackway.flags.ofrep import MAX_BODY_BYTES


def new_key() -> str:
    return "configcat-sdk-1/" + "/".join(secrets.token_urlsafe(16)[:22] for _ in range(2))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("ofrep") / "data")
    try:
        yield srv
    finally:
        srv.stop()


def serve(server: Server, config: dict[str, Any], name: str, directory: Path) -> str:
    """Import `config` as environment `name`; its SDK key once OFREP serves it."""
    key = new_key()
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    run(server, "flags", "import", str(path), "--sdk-key", key, "--environment", name)
    with server.client() as http:
        status = lambda: bulk(http, key, None).status_code  # noqa: E731
        assert until(status, 200) == 200
    return key


def run(server: Server, *args: str, ok: bool = True) -> str:
    """A `trackway` command in this process (the subprocess path is tested elsewhere)."""
    result = CliRunner().invoke(main, [*args, "--data-dir", str(server.data_dir)], env=server.env)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def bulk(http: httpx.Client, key: str, context: Any, **headers: str) -> httpx.Response:
    body = {} if context is None else {"context": context}
    return http.post(
        "/ofrep/v1/evaluate/flags", json=body, headers={"Authorization": f"Bearer {key}", **headers}
    )


def provider_client(server: Server, key: str) -> OpenFeatureClient:
    """An OpenFeature client on the OFREP provider for environment `key` (its own domain)."""
    provider = OFREPProvider(server.url, headers_factory=lambda: {"X-API-Key": key})
    api.set_provider(provider, domain=key)
    return api.get_client(domain=key)


def context(user: User | None) -> EvaluationContext:
    if user is None:
        return EvaluationContext()
    attributes = {k: v for k, v in user.attributes.items() if k != "Identifier"}
    return EvaluationContext(user.identifier, attributes)


def resolve(
    client: OpenFeatureClient, setting: dict[str, Any], key: str, user: User | None
) -> FlagEvaluationDetails[Any]:
    get = {
        0: client.get_boolean_details,
        1: client.get_string_details,
        2: client.get_integer_details,
        3: client.get_float_details,
    }[setting["t"]]
    default = {0: False, 1: "default", 2: -999, 3: -999.5}[setting["t"]]
    return get(key, default, context(user))  # type: ignore[operator]


@pytest.fixture(scope="module")
def environments(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[str, dict[str, Any], Oracle]]]:
    directory = tmp_path_factory.mktemp("configs")
    configs = {
        "basic": json.loads((DATA / "matrix" / "sample_v5.json").read_text()),
        "rich": rich_config(),
        "cycles": json.loads((DATA / "test_circulardependency_v6.json").read_text()),
    }
    made = {
        name: (serve(server, config, name, directory), config, Oracle(config, directory))
        for name, config in configs.items()
    }
    yield made
    for _, _, oracle in made.values():
        oracle.close()


def test_provider_answers_the_sdk_answers_on_configcat_matrix(
    server: Server, environments: dict[str, tuple[str, dict[str, Any], Oracle]]
) -> None:
    key, config, oracle = environments["basic"]
    client = provider_client(server, key)
    cells = [c for c in matrix("testmatrix.csv") if c.row % 50 == 2]
    assert len(cells) > 250
    wrong = []
    for cell in cells:
        got = resolve(client, config["f"][cell.key], cell.key, cell.user)
        value, variation, _ = oracle.details(cell.key, cell.user)
        if (got.value, got.variant, got.error_code) != (value, variation, None):
            wrong.append((cell.row, cell.key, got.value, got.variant, value, variation))
    assert wrong == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=users())
def test_provider_answers_the_sdk_answers_for_random_users(
    user: User | None,
    server: Server,
    environments: dict[str, tuple[str, dict[str, Any], Oracle]],
) -> None:
    key, config, oracle = environments["rich"]
    # The provider sends no targetingKey when it is "" (it tests truthiness).
    assume(user is None or user.identifier != "")
    if user is not None:
        user = User(user.identifier, {k: as_json(v) for k, v in user.attributes.items()})
    client = provider_client(server, key)
    with server.client() as http:
        listed = {f["key"]: f for f in bulk(http, key, context_json(user)).json()["flags"]}
    for flag, setting in config["f"].items():
        value, variation, error = oracle.details(flag, user, None)
        got = resolve(client, setting, flag, user)
        if error:
            assert got.error_code == ErrorCode.GENERAL and listed[flag]["errorCode"] == "GENERAL"
            continue
        assert (got.value, got.variant) == (value, variation), (flag, user)
        assert (listed[flag]["value"], listed[flag]["variant"]) == (value, variation)


def as_json(value: Any) -> Any:
    """What an app can send in JSON: Unix seconds for a datetime, text for NaN/Infinity."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def context_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"targetingKey": user.identifier, **{
        k: v for k, v in user.attributes.items() if k != "Identifier"
    }}  # fmt: skip


def test_single_flag_shapes_and_errors(
    server: Server, environments: dict[str, tuple[str, dict[str, Any], Oracle]]
) -> None:
    key, _, _ = environments["basic"]
    cycles, _, _ = environments["cycles"]
    auth = {"Authorization": f"Bearer {key}"}
    path = "/ofrep/v1/evaluate/flags/"
    john = {"context": {"targetingKey": "a@configcat.com", "Email": "a@configcat.com"}}
    with server.client() as http:
        ok = http.post(path + "stringIsInDogDefaultCat", json=john, headers=auth)
        assert ok.status_code == 200
        assert ok.json() == {
            "key": "stringIsInDogDefaultCat",
            "value": "Dog",
            "reason": "TARGETING_MATCH",
            "variant": ok.json()["variant"],
            "metadata": {"why": "targeting rule 1 matched", "matchedTargetingRule": 1},
        }
        split = http.post(path + "string25Cat25Dog25Falcon25Horse", json=john, headers=auth)
        assert split.json()["reason"] == "SPLIT"
        assert "matchedPercentageOption" in split.json()["metadata"]
        double = http.post(path + "doubleDefaultPi", json={}, headers=auth).json()
        assert (double["value"], double["reason"]) == (3.1415, "DEFAULT")

        def error(flag: str, body: Any, headers: dict[str, str], raw: bytes | None = None) -> Any:
            if raw is not None:
                got = http.post(path + flag, content=raw, headers=headers)
            else:
                got = http.post(path + flag, json=body, headers=headers)
            return got.status_code, got.json().get("errorCode"), got.json()

        assert error("nope", john, auth)[:2] == (404, "FLAG_NOT_FOUND")
        assert error("stringDefaultCat", john, {})[:2] == (401, "GENERAL")
        assert error("stringDefaultCat", john, {"X-API-Key": new_key()})[:2] == (403, "GENERAL")
        assert error("stringDefaultCat", None, auth, b"{nope")[:2] == (400, "PARSE_ERROR")
        assert error("stringDefaultCat", [1], auth)[:2] == (400, "PARSE_ERROR")
        big = {"context": {"targetingKey": "1", "Blob": "x" * MAX_BODY_BYTES}}
        status, code, body = error("stringDefaultCat", big, auth)
        assert (status, code) == (400, "INVALID_CONTEXT") and "larger than" in body["errorDetails"]
        no_key = {"context": {"Email": "a@b.c"}}
        assert error("stringDefaultCat", no_key, auth)[:2] == (400, "TARGETING_KEY_MISSING")
        nested = {"context": {"targetingKey": "1", "Plan": {"tier": 1}}}
        status, code, body = error("stringDefaultCat", nested, auth)
        assert (status, code) == (400, "INVALID_CONTEXT") and "Plan" in body["errorDetails"]
        assert error("stringDefaultCat", {"context": 5}, auth)[:2] == (400, "INVALID_CONTEXT")
        status, code, body = error("key1", {}, {"Authorization": f"Bearer {cycles}"})
        assert (status, code) == (400, "GENERAL") and "circular" in body["errorDetails"]
    client = provider_client(server, key)
    missing = client.get_string_details("nope", "fallback", EvaluationContext("1"))
    assert (missing.value, missing.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)


def test_bulk_etag_and_not_modified(
    server: Server, environments: dict[str, tuple[str, dict[str, Any], Oracle]]
) -> None:
    key, config, _ = environments["basic"]
    cycles, _, _ = environments["cycles"]
    ctx = {"targetingKey": "b@configcat.com", "Email": "b@configcat.com", "Country": "Hungary"}
    with server.client() as http:
        first = bulk(http, key, ctx)
        assert first.status_code == 200
        flags = first.json()["flags"]
        assert [f["key"] for f in flags] == list(config["f"])
        user = User.from_attributes(ctx["targetingKey"], ctx)
        assert {f["key"]: f["value"] for f in flags} == {
            k: evaluate(config, k, user).value for k in config["f"]
        }
        etag = first.headers["etag"]
        again = bulk(http, key, ctx, **{"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        other = bulk(http, key, {**ctx, "Country": "Chile"}, **{"If-None-Match": etag})
        assert other.status_code == 200 and other.headers["etag"] != etag
        broken = bulk(http, cycles, None).json()["flags"]
        assert {f["key"]: f.get("errorCode") for f in broken}["key1"] == "GENERAL"
        assert bulk(http, key, {"Email": "x"}).json()["errorCode"] == "TARGETING_KEY_MISSING"
        assert "key" not in bulk(http, key, {"Email": "x"}).json()
        preflight = http.options(
            "/ofrep/v1/evaluate/flags",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200


def test_cli_evaluate(
    server: Server, environments: dict[str, tuple[str, dict[str, Any], Oracle]]
) -> None:
    key, _, oracle = environments["basic"]
    user = {"identifier": "a@configcat.com", "email": "a@configcat.com", "custom": {"Custom1": "x"}}
    args = ["flags", "evaluate", "stringIsInDogDefaultCat", "--user", json.dumps(user)]
    # Once as a real process: the command as users run it.
    shown = cli(*args, "--sdk-key", key, data_dir=server.data_dir, env=server.env)
    assert shown.splitlines()[0].startswith("stringIsInDogDefaultCat = 'Dog'  (variation ")
    assert "reason: TARGETING_MATCH: targeting rule 1 matched" in shown
    assert "User.Email IS ONE OF ['a@configcat.com', 'b@configcat.com']: true" in shown
    as_json = json.loads(run(server, *args, "--environment", "basic", "--json"))
    value, variation, _ = oracle.details("stringIsInDogDefaultCat", User.from_json(user))
    assert (as_json["value"], as_json["variation_id"], as_json["matched_rule"]) == (
        value,
        variation,
        0,
    )
    assert as_json["environment"] == "basic" and as_json["trace"]

    def fails(*extra: str) -> str:
        return run(server, "flags", "evaluate", *extra, ok=False).strip()

    assert "give --environment NAME or --sdk-key KEY" in fails("stringDefaultCat")
    assert "has no flag 'nope'" in fails("nope", "--environment", "basic")
    assert "--user is not JSON" in fails(
        "stringDefaultCat", "--environment", "basic", "--user", "{"
    )
    assert "identifier" in fails("stringDefaultCat", "--environment", "basic", "--user", "{}")
