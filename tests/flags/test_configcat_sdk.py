"""The official ConfigCat Python SDK evaluates configs served by a real `trackway serve`.

Matrices and configs: tests/flags/data (ConfigCat's own SDK test data, see its README).
"""

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from configcatclient import ConfigCatClient, ConfigCatOptions, PollingMode
from configcatclient.configcatoptions import Hooks
from configcatclient.user import User

from tests.support import Server, cli, until
from trackway.flags.comparators import COMPARATORS, HASHED

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def new_key() -> str:
    return "configcat-sdk-1/" + "/".join(secrets.token_urlsafe(16)[:22] for _ in range(2))


def sdk(server: Server, key: str, on_changed: Any = None) -> ConfigCatClient:
    hooks = Hooks(on_config_changed=on_changed) if on_changed else None
    client = ConfigCatClient.get(
        key,
        ConfigCatOptions(base_url=server.url, polling_mode=PollingMode.manual_poll(), hooks=hooks),
    )
    assert not client.force_refresh().error, "the SDK could not download"
    return client


def import_config(server: Server, path: Path, key: str, name: str) -> None:
    cli(
        "flags",
        "import",
        str(path),
        "--sdk-key",
        key,
        "--environment",
        name,
        data_dir=server.data_dir,
        env=server.env,
    )


def user(spec: dict[str, Any]) -> User:
    return User(spec["identifier"], country=spec["country"], custom=spec["custom"])


def wait_served(server: Server, key: str) -> None:
    path = f"/configuration-files/{key}/config_v6.json"
    with server.client() as http:
        assert until(lambda: http.get(path).status_code, 200) == 200


@pytest.mark.parametrize(
    "config", ["comparison_attribute_trimming.json", "comparison_value_trimming.json"]
)
def test_imported_configs_evaluate_as_configcat(flag_server: Server, config: str) -> None:
    key = new_key()
    import_config(flag_server, DATA / config, key, config.split(".")[0].replace("_", "-"))
    wait_served(flag_server, key)
    client = sdk(flag_server, key)
    try:
        case = EXPECTED[config]
        got = {
            k: client.get_value(k, "default_value", user(case["user"])) for k in case["expected"]
        }
        assert got == case["expected"]
    finally:
        client.close()


def test_hashed_segments_and_prerequisite_cycles(flag_server: Server) -> None:
    segments, cycles = new_key(), new_key()
    import_config(flag_server, DATA / "test_override_segments_v6.json", segments, "segments")
    import_config(flag_server, DATA / "test_circulardependency_v6.json", cycles, "cycles")
    wait_served(flag_server, segments)
    wait_served(flag_server, cycles)
    client, cyclic = sdk(flag_server, segments), sdk(flag_server, cycles)
    try:
        for flag, ident, email, want in EXPECTED["test_override_segments_v6.json"]["cases"]:
            assert client.get_value(flag, None, User(ident, email)) is want
        for flag in ("key1", "key2", "key4"):  # cycles: the caller's default
            assert cyclic.get_value(flag, "default_value") == "default_value"
    finally:
        client.close()
        cyclic.close()


def test_export_round_trip_evaluates_identically(flag_server: Server, tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    config = "comparison_attribute_trimming.json"
    import_config(flag_server, DATA / config, first, "round-trip-a")
    exported = cli(
        "flags", "export", "--sdk-key", first, data_dir=flag_server.data_dir, env=flag_server.env
    )
    assert json.loads(exported) == json.loads((DATA / config).read_text())
    (tmp_path / "exported.json").write_text(exported)
    import_config(flag_server, tmp_path / "exported.json", second, "round-trip-b")
    wait_served(flag_server, second)
    client = sdk(flag_server, second)
    try:
        case = EXPECTED[config]
        got = {
            k: client.get_value(k, "default_value", user(case["user"])) for k in case["expected"]
        }
        assert got == case["expected"]
    finally:
        client.close()


def yaml_for(config: dict[str, Any], cleartext: dict[str, str], name: str, key: str) -> str:
    """The flags of a config written as Trackway YAML: hashed values as their cleartext."""

    names = {number: n for n, (number, _) in COMPARATORS.items()}
    settings: dict[str, Any] = {}
    for flag, setting in config["f"].items():
        rules = []
        for rule in setting["r"]:
            [cond] = rule["c"]
            u = cond["u"]
            out: dict[str, Any] = {"attribute": u["a"], "comparator": names[u["c"]]}
            clear = cleartext.get(u["a"])
            if "l" in u:
                out["values"] = [clear] if u["c"] in HASHED else u["l"]
            else:
                out["value"] = clear if u["c"] in HASHED else u.get("s", u.get("d"))
            rules.append({"when": [out], "serve": rule["s"]["v"]["s"]})
        settings[flag] = {"type": "string", "value": setting["v"]["s"], "rules": rules}
    return json.dumps({"flags": [{"environment": name, "sdk_key": key, "settings": settings}]})


def test_the_same_flags_written_as_yaml_evaluate_identically(
    flag_server: Server, tmp_path: Path
) -> None:
    config = "comparison_attribute_trimming.json"
    key = new_key()
    text = yaml_for(
        json.loads((DATA / config).read_text()),
        {"Identifier": "12345", "Country": "USA"},
        "yaml-trimming",
        key,
    )
    (tmp_path / "flags.yaml").write_text(text)
    cli("apply", str(tmp_path / "flags.yaml"), data_dir=flag_server.data_dir, env=flag_server.env)
    wait_served(flag_server, key)
    client = sdk(flag_server, key)
    try:
        case = EXPECTED[config]
        got = {
            k: client.get_value(k, "default_value", user(case["user"])) for k in case["expected"]
        }
        assert got == case["expected"]
    finally:
        client.close()


def test_unchanged_config_is_304_and_a_change_reaches_the_sdk(
    flag_server: Server, tmp_path: Path
) -> None:
    key = new_key()
    path = tmp_path / "f.yaml"
    write = lambda v: path.write_text(  # noqa: E731
        f"flags:\n  - environment: polled\n    sdk_key: {key}\n    settings:\n"
        f"      banner: {{type: string, value: {v}}}\n"
    )
    write("old")
    cli("apply", str(path), data_dir=flag_server.data_dir, env=flag_server.env)
    wait_served(flag_server, key)
    changes: list[Any] = []
    client = sdk(flag_server, key, changes.append)
    try:
        assert client.get_value("banner", "") == "old"
        assert not client.force_refresh().error
        assert len(changes) == 1  # Python fires on every 200: the second fetch got 304
        write("new")
        cli("apply", str(path), data_dir=flag_server.data_dir, env=flag_server.env)
        assert (
            until(lambda: (client.force_refresh(), client.get_value("banner", ""))[1], "new")
            == "new"
        )
    finally:
        client.close()


def test_http_protocol_details(flag_server: Server) -> None:
    key = new_key()
    import_config(flag_server, DATA / "test_circulardependency_v6.json", key, "protocol")
    wait_served(flag_server, key)
    path = f"/configuration-files/{key}/config_v6.json"
    with flag_server.client() as http:
        first = http.get(path, headers={"Origin": "https://app.example"})
        assert first.headers["access-control-allow-origin"] == "*"
        assert "etag" in first.headers["access-control-expose-headers"].lower()
        body = first.json()
        assert body["p"] == {"u": flag_server.url, "r": 0}
        etag = first.headers["etag"]
        assert http.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert http.get(path, params={"ccetag": etag, "sdk": "x"}).status_code == 304
        assert http.get(path, headers={"If-None-Match": "empty"}).status_code == 200
        missing = http.get(f"/configuration-files/{new_key()}/config_v6.json")
        assert missing.status_code == 404
        assert missing.json()["code"] == "unknown_sdk_key"
        assert missing.headers["access-control-allow-origin"] == "*"
        other = http.get(f"/configuration-files/{key}/config_v5.json")
        assert other.status_code == 404 and "config_v6.json" in other.json()["message"]
        head = http.head(path)
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
        posted = http.post(path)
        assert posted.status_code == 405 and posted.json()["code"] == "method_not_allowed"
        preflight = http.options(
            path,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "if-none-match",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert "If-None-Match" in preflight.headers["access-control-allow-headers"]


SENSITIVE = """\
flags:
  - environment: sensitive-yaml
    sdk_key: {key}
    settings:
{settings}
"""
CASES = {  # comparator, values, whether the rule matches Email john@example.com, Tags ["a", "b"]
    "sensitive equals": ("Email", "value: john@example.com", True),
    "sensitive not equals": ("Email", "value: john@example.com", False),
    "sensitive starts with any of": ("Email", "values: [john@, x]", True),
    "sensitive not starts with any of": ("Email", "values: [john@]", False),
    "sensitive ends with any of": ("Email", "values: ['@example.com']", True),
    "sensitive not ends with any of": ("Email", "values: ['@other.com']", True),
    "sensitive is one of": ("Email", "values: [john@example.com]", True),
    "sensitive is not one of": ("Email", "values: [john@example.com]", False),
    "sensitive array contains any of": ("Tags", "values: [b, c]", True),
    "sensitive array not contains any of": ("Tags", "values: [a]", False),
}


def test_sensitive_comparators_written_in_clear_match(flag_server: Server, tmp_path: Path) -> None:
    key = new_key()
    settings = "".join(
        f"      f{i}:\n        type: bool\n        value: false\n        rules:\n"
        f"          - when: [{{attribute: {attr}, comparator: {name}, {values}}}]\n"
        "            serve: true\n"
        for i, (name, (attr, values, _)) in enumerate(CASES.items())
    )
    (tmp_path / "s.yaml").write_text(SENSITIVE.format(key=key, settings=settings))
    cli("apply", str(tmp_path / "s.yaml"), data_dir=flag_server.data_dir, env=flag_server.env)
    wait_served(flag_server, key)
    client = sdk(flag_server, key)
    try:
        john = User("1", email="john@example.com", custom={"Tags": ["a", "b"]})
        got = {name: client.get_value(f"f{i}", None, john) for i, name in enumerate(CASES)}
        assert got == {name: want for name, (_, _, want) in CASES.items()}
    finally:
        client.close()
