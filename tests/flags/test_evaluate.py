"""Trackway's evaluator gives the answers of ConfigCat's SDKs: ConfigCat's own test matrices
(tests/flags/data, see its README) cell by cell, the SDK's table-driven cases, and a
property test (random users on a rich config) against the official Python SDK."""

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flags.sdk_oracle import DATA, Oracle, matrix
from trackway.flags.compile import compile_environment
from trackway.flags.evaluate import Evaluator, User, evaluate
from trackway.flags.spec import EnvironmentSpec

MATRICES = [
    ("sample_v5.json", "testmatrix.csv"),
    ("sample_number_v5.json", "testmatrix_number.csv"),
    ("sample_semantic_v5.json", "testmatrix_semantic.csv"),
    ("sample_semantic_2_v5.json", "testmatrix_semantic_2.csv"),
    ("sample_sensitive_v5.json", "testmatrix_sensitive.csv"),
    ("sample_segments_v6.json", "testmatrix_segments.csv"),
    ("sample_variationid_v5.json", "testmatrix_variationId.csv"),
]


def load(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return config


@pytest.fixture(scope="module")
def oracles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Oracle]]:
    directory = tmp_path_factory.mktemp("oracle")
    made: dict[str, Oracle] = {}

    class Lazy(dict[str, Oracle]):
        def __missing__(self, name: str) -> Oracle:
            made[name] = self[name] = Oracle(load(name), directory)
            return made[name]

    yield Lazy()
    for oracle in made.values():
        oracle.close()


def shows(value: Any, expected: str) -> bool:
    """Whether a value is the matrix's text (numbers compared as numbers: -1 is `-1.0`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == float(expected)
    return str(value) == expected


@pytest.mark.parametrize(("config_name", "matrix_name"), MATRICES)
def test_configcat_matrices_cell_by_cell(
    config_name: str, matrix_name: str, oracles: dict[str, Oracle]
) -> None:
    config = load(f"matrix/{config_name}")
    oracle = oracles[f"matrix/{config_name}"]
    by_id = "variation" in matrix_name.lower()
    wrong, cells = [], 0
    for cell in matrix(matrix_name):
        got = evaluate(config, cell.key, cell.user)
        sdk_value, sdk_variation, _ = oracle.details(cell.key, cell.user)
        cells += 1
        if not shows(got.variation_id if by_id else got.value, cell.expected) or (
            got.value,
            got.variation_id,
        ) != (
            sdk_value,
            sdk_variation,
        ):
            wrong.append((cell.row, cell.key, cell.expected, got.value, got.variation_id))
    assert cells > 0
    assert wrong == []


def test_trimming_configs_as_in_the_sdk_tests() -> None:
    expected = json.loads((DATA / "expected.json").read_text())
    for name in ("comparison_attribute_trimming.json", "comparison_value_trimming.json"):
        spec = expected[name]["user"]
        user = User.of(spec["identifier"], country=spec["country"], custom=spec["custom"])
        config = load(name)
        keys = expected[name]["expected"]
        got = {k: evaluate(config, k, user, "default_value").value for k in keys}
        assert got == expected[name]["expected"], name


# configcat/python-sdk configcatclienttests/test_rollout.py,
# test_attribute_conversion_to_canonical_string
CONVERSIONS = [
    ("numberToStringConversion", 0.12345, "1"),
    ("numberToStringConversionInt", 125.0, "4"),
    ("numberToStringConversionPositiveExp", -1.23456789e96, "2"),
    ("numberToStringConversionNegativeExp", -12345.6789e-100, "4"),
    ("numberToStringConversionNaN", float("nan"), "3"),
    ("numberToStringConversionPositiveInf", float("inf"), "4"),
    ("numberToStringConversionNegativeInf", float("-inf"), "3"),
    ("dateToStringConversion", datetime(2023, 3, 31, 23, 59, 59, 999000), "3"),
    ("dateToStringConversion", 1680307199.999, "3"),
    ("dateToStringConversionNaN", float("nan"), "3"),
    ("dateToStringConversionPositiveInf", float("inf"), "1"),
    ("dateToStringConversionNegativeInf", float("-inf"), "5"),
    ("stringArrayToStringConversion", ["read", "Write", " eXecute "], "4"),
    ("stringArrayToStringConversionEmpty", [], "5"),
    ("stringArrayToStringConversionSpecialChars", ["+<>%\"'\\/\t\r\n"], "3"),
    ("stringArrayToStringConversionUnicode", ["äöüÄÖÜçéèñışğâ¢™✓😀"], "2"),
]


@pytest.mark.parametrize(("key", "attribute", "expected"), CONVERSIONS)
def test_attribute_conversion_to_canonical_text(
    key: str, attribute: Any, expected: str, oracles: dict[str, Oracle]
) -> None:
    user = User.of("12345", custom={"Custom1": attribute})
    got = evaluate(load("comparison_attribute_conversion.json"), key, user, "default_value")
    assert got.value == expected
    assert oracles["comparison_attribute_conversion.json"].details(key, user)[0] == expected


def test_segments_prerequisites_and_their_errors() -> None:
    segments = load("test_override_segments_v6.json")
    john, kate = User.of("1", "john@example.com"), User.of("2", "kate@example.com")
    assert evaluate(segments, "developerAndBetaUserSegment", john).value is True
    assert evaluate(segments, "developerAndBetaUserSegment", kate).value is False
    cycles = load("test_circulardependency_v6.json")
    for key, cycle in [
        ("key1", "'key1' -> 'key1'"),
        ("key2", "'key2' -> 'key3' -> 'key2'"),
        ("key4", "'key4' -> 'key3' -> 'key2' -> 'key3'"),
    ]:
        got = evaluate(cycles, key, None, "default_value", "dv")
        assert (got.value, got.variation_id, got.reason) == ("default_value", "dv", "ERROR")
        assert got.error is not None and cycle in got.error
    # LocalOnly in the SDK's test_prerequisite_flag_override: the prerequisite is absent
    missing = evaluate(load("test_override_flagdependency_v6.json"), "stringDependsOnInt", john)
    assert missing.value is None and "mainIntFlag" in (missing.error or "")


def prerequisite_config(kind: int, value: dict[str, Any]) -> dict[str, Any]:
    main = {0: {"b": True}, 1: {"s": "private"}, 2: {"i": 2}, 3: {"d": 0.1}}[kind]
    return {
        "p": {"s": "salt"},
        "f": {
            "main": {"t": kind, "v": main, "i": "m"},
            "dependent": {
                "t": 1,
                "r": [{"c": [{"p": {"f": "main", "c": 0, "v": value}}], "s": {"v": {"s": "Dog"}}}],
                "v": {"s": "Cat"},
                "i": "c",
            },
        },
    }


# test_prerequisite_flag_comparison_value_type_mismatch, as config values
@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (0, {"b": True}, "Dog"),
        (0, {"b": False}, "Cat"),
        (0, {"s": "1"}, None),
        (0, {"i": 1}, None),
        (1, {"s": "private"}, "Dog"),
        (1, {"s": "Private"}, "Cat"),
        (1, {"b": True}, None),
        (2, {"i": 2}, "Dog"),
        (2, {"i": 1}, "Cat"),
        (2, {"d": 2.0}, None),
        (3, {"d": 0.1}, "Dog"),
        (3, {"d": 0.11}, "Cat"),
        (3, {"i": 1}, None),
    ],
)
def test_prerequisite_value_types(
    kind: int, value: dict[str, Any], expected: str | None, tmp_path: Path
) -> None:
    config = prerequisite_config(kind, value)
    got = evaluate(config, "dependent", None)
    assert got.value == expected
    assert (got.error is None) == (expected is not None)
    oracle = Oracle(config, tmp_path)
    try:
        assert oracle.details("dependent", None)[0] == expected
    finally:
        oracle.close()


def test_trace_names_the_matched_rule_and_why() -> None:
    config = load("matrix/sample_v5.json")
    user = User.of("a@configcat.com", "a@configcat.com", "Hungary", {"Custom1": "admin"})
    got = evaluate(config, "stringIsInDogDefaultCat", user, trace=True)
    assert (got.value, got.rule, got.reason) == ("Dog", 0, "TARGETING_MATCH")
    assert got.why == "targeting rule 1 matched"
    assert any("IS ONE OF" in line and "true" in line for line in got.trace)
    split = evaluate(config, "string25Cat25Dog25Falcon25Horse", User.of("x"), trace=True)
    assert split.reason == "SPLIT" and split.option is not None
    assert f"bucket {split.option.bucket}" in split.why
    plain = evaluate(config, "stringDefaultCat", None, trace=True)
    assert (plain.reason, plain.value) == ("DEFAULT", "Cat")
    unknown = evaluate(config, "nope", None, "d")
    assert unknown.value == "d" and "nope" in (unknown.error or "")


def test_user_from_json() -> None:
    user = User.from_json(
        {"identifier": "7", "Email": "a@b.c", "country": "HU", "custom": {"Plan": "pro"}, "Age": 3}
    )
    assert dict(user.attributes) == {
        "Identifier": "7",
        "Email": "a@b.c",
        "Country": "HU",
        "Plan": "pro",
        "Age": 3,
    }
    for bad, message in [
        ([], "JSON object"),
        ({"email": "x"}, "identifier"),
        ({"identifier": "1", "custom": 3}, "custom"),
        ({"identifier": "1", "email": 5}, "email"),
        ({"identifier": "1", "Plan": {"a": 1}}, "Plan"),
        ({"identifier": "1", "Tags": ["a", 1]}, "Tags"),
    ]:
        with pytest.raises(ValueError, match=message):
            User.from_json(bad)


def rich_config() -> dict[str, Any]:
    """tests/flags/data/rich.yaml compiled by Trackway (hashed values made by compile.py)."""
    spec = msgspec.convert(yaml.safe_load((DATA / "rich.yaml").read_text()), EnvironmentSpec)
    return compile_environment(spec, "rich-salt/0123456789abcdef+==")


TEXT = st.sampled_from(["", " ", "a", "b", "HU", "DE", "x", "1", "2,5", "NaN", "beta", "alpha"])
EMAILS = st.sampled_from(
    ["a@a.io", "b@staff.io", "bot@staff.io", "z@z.io", "y@z.io", "q@q.q", "x@x.com", "noat", ""]
)
VERSIONS = st.sampled_from(
    ["1.0.0", " 1.0.0 ", "1.0.0-rc.1", "1.2.0", "1.2.1", "2.0.0", "2.0.0+build", "1.0", "v1", ""]
)
NUMBERS = st.one_of(
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["3", " 3 ", "2,5", "abc", "1e3", "-0", "NaN", "Infinity"]),
    st.sampled_from([datetime(2024, 1, 1), ["3"]]),  # not numbers: a config error in the SDK
)
DATES = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.floats(1.6e9, 1.8e9),
    st.sampled_from(["1700000001", "soon", "1.7e9"]),
)
TAGS = st.one_of(
    st.lists(st.sampled_from(["alpha", "beta", "gamma", "Beta"]), max_size=3),
    st.sampled_from(['["beta"]', '["alpha","x"]', "beta", "[1]", "[]"]),
)


@st.composite
def users(draw: st.DrawFn) -> User | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    custom: dict[str, Any] = {}
    for name, strategy in [
        ("Org", TEXT),
        ("Tier", NUMBERS),
        ("Since", DATES),
        ("Version", VERSIONS),
        ("Tags", TAGS),
    ]:
        if draw(st.booleans()):
            custom[name] = draw(strategy)
    email = draw(st.one_of(st.none(), EMAILS))
    country = draw(st.one_of(st.none(), TEXT))
    return User.of(draw(st.text(max_size=8)), email, country, custom)


CONFIGS = ["rich", "matrix/sample_v5.json", "matrix/sample_semantic_v5.json"]


@pytest.fixture(scope="module")
def property_oracles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("property")
    configs = {name: rich_config() if name == "rich" else load(name) for name in CONFIGS}
    made = {name: Oracle(config, directory) for name, config in configs.items()}
    yield {"configs": configs, "oracles": made}
    for oracle in made.values():
        oracle.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=users())
def test_random_users_get_the_sdk_answers(
    user: User | None, property_oracles: dict[str, Any]
) -> None:
    for name, config in property_oracles["configs"].items():
        oracle = property_oracles["oracles"][name]
        for key in config["f"]:
            got = evaluate(config, key, user, "default")
            value, variation, error = oracle.details(key, user, "default")
            same_value = got.value == value or (
                isinstance(value, float) and math.isnan(value) and math.isnan(got.value)
            )
            assert same_value and got.variation_id == variation, (
                name,
                key,
                user,
            )
            assert (got.error is not None) == error, (name, key, user, got.error)


@settings(max_examples=100, deadline=None)
@given(user=users())
def test_evaluate_all_gives_each_settings_own_evaluation(user: User | None) -> None:
    # One run for all settings reuses prerequisite and segment results: the same answers
    # (and the same errors, cycles included) as evaluating each setting on its own.
    for config in (rich_config(), load("test_circulardependency_v6.json")):
        evaluator = Evaluator(config)
        for key, outcome in evaluator.evaluate_all(user):
            alone = evaluator.evaluate(key, user)
            if alone.error is not None:
                assert outcome == alone.error
            else:
                assert outcome == (alone.value, alone.variation_id, alone.rule, alone.option)
