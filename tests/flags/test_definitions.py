"""Flag definitions in `trackway apply`: hashing, precise errors, dry runs, nothing half-applied."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import TRACKWAY, cli
from trackway.flags.compile import sensitive_hash


def apply(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "workspace.yaml"
    path.write_text(text)
    return subprocess.run(
        [*TRACKWAY, "apply", str(path), "--data-dir", str(tmp_path / "d"), *extra],
        capture_output=True,
        text=True,
    )


def test_sensitive_hash_is_configcats() -> None:
    # flag-service.md §1: this email in segment "Developers" with this salt.
    salt = "80xCU/SlDz1lCiWFaxIBjyJeJecWjq46T4eu6GtozkM="
    digest = sensitive_hash(b"john@example.com", salt, "Developers")
    assert digest == "a7cdf54e74b5527bd2617889ec47f6d29b825ccfc97ff00832886bcb735abded"


GOOD = """\
flags:
  - environment: production
    segments:
      Developers:
        - {attribute: Email, comparator: sensitive is one of, values: [john@example.com]}
    settings:
      beta:
        type: bool
        value: false
        rules:
          - when: [{in_segment: Developers}]
            serve: true
      greeting:
        type: string
        value: hello
        percentage_attribute: Country
        rules:
          - when: [{flag: beta, equals: true}]
            serve: hi developer
        percentages:
          - {percent: 40, value: hola, variation_id: v-hola}
          - {percent: 60, value: hello}
"""


def test_apply_compiles_stores_and_is_idempotent(tmp_path: Path) -> None:
    dry = apply(tmp_path, GOOD, "--dry-run")
    assert dry.stdout.strip() == "would create flag environment 'production' (2 settings)"
    assert "No flag environments." in cli("flags", "list", data_dir=tmp_path / "d")
    done = apply(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr
    assert apply(tmp_path, GOOD).stdout.strip() == "Nothing to change."
    shown = json.loads(cli("flags", "show", "production", "--json", data_dir=tmp_path / "d"))
    assert shown["sdk_key"].startswith("configcat-sdk-1/")
    config = shown["config"]
    salt = config["p"]["s"]
    assert config["s"][0]["r"][0]["l"] == [sensitive_hash(b"john@example.com", salt, "Developers")]
    greeting = config["f"]["greeting"]
    assert greeting["a"] == "Country"
    assert greeting["r"][0]["c"] == [{"p": {"f": "beta", "c": 0, "v": {"b": True}}}]
    assert greeting["p"][0] == {"p": 40, "v": {"s": "hola"}, "i": "v-hola"}
    changed = apply(tmp_path, GOOD.replace("value: hello\n", "value: bonjour\n", 1), "--dry-run")
    assert changed.stdout.strip() == "would update flag environment 'production' (change greeting)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("sensitive is one of", "is maybe"),
            "flags[0]: segments.Developers[0]: unknown comparator 'is maybe'",
        ),
        (
            ("percent: 40", "percent: 30"),
            "settings.greeting.percentages: the percentages add up to 90, not 100",
        ),
        (
            ("serve: true", "serve: 'yes'"),
            "settings.beta.rules[0].serve: 'yes' is not a bool value",
        ),
        (("value: false", "value: 1"), "settings.beta.value: 1 is not a bool value"),
        (
            ("equals: true", "equals: maybe"),
            "settings.greeting.rules[0].when[0].equals: 'maybe' is not a bool value",
        ),
        (("{in_segment: Developers}", "{in_segment: Testers}"), "unknown segment 'Testers'"),
        (("type: bool", "type: boolean"), "settings.beta.type: unknown type 'boolean'"),
        (
            ("{in_segment: Developers}", "{flag: greeting, equals: hi}"),
            "prerequisite flags form a cycle: beta -> greeting -> beta",
        ),
        (
            ("values: [john@example.com]", "value: john@example.com"),
            "'sensitive is one of' takes `values`",
        ),
    ],
)
def test_bad_definitions_are_refused_with_their_place(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    cli("db", "migrate", data_dir=tmp_path / "d")  # a data directory to find unchanged
    text = "sources:\n  - name: web\n" + GOOD.replace(*change, 1)
    done = apply(tmp_path, text)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert "workspace.yaml: flags[0]" in done.stderr
    listed = json.loads(cli("sources", "list", "--json", data_dir=tmp_path / "d"))
    assert "web" not in [s["name"] for s in listed]  # nothing half-applied
    assert "No flag environments." in cli("flags", "list", data_dir=tmp_path / "d")


def test_import_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"f": {"x": {"t": 7, "v": {"b": true}}}}')
    done = subprocess.run(
        [
            *TRACKWAY,
            "flags",
            "import",
            str(bad),
            "--sdk-key",
            "configcat-sdk-1/" + "a" * 22 + "/" + "b" * 22,
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "f.x: a setting needs `t`" in done.stderr
    short = subprocess.run(
        [
            *TRACKWAY,
            "flags",
            "import",
            str(bad),
            "--sdk-key",
            "abc",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
    )
    assert short.returncode == 1 and "invalid SDK key 'abc'" in short.stderr
