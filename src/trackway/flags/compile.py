"""Compiles an `EnvironmentSpec` to the config_v6 JSON the ConfigCat SDKs evaluate.

Every check happens here, so a definition that compiles is one the SDKs evaluate without
errors: known comparators with the right kind of comparison value, values of the
setting's type, percentages summing to 100, known segments and prerequisite flags, and
no prerequisite cycles. Errors name the place (`settings.dark_mode.rules[0].when[1]`).
"""

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any, NoReturn

import msgspec

from trackway.flags.comparators import COMPARATORS, HASHED, PREFIX_HASHED
from trackway.flags.spec import ConditionSpec, EnvironmentSpec, PercentageSpec, SettingSpec

SETTING_TYPES = {"bool": 0, "string": 1, "int": 2, "double": 3}
_VALUE_KEYS = "bsid"  # config_v6 SettingValue key per setting type number


class FlagError(ValueError):
    """A flag definition that cannot be served; the message starts with its place."""


def sensitive_hash(text: bytes, salt: str, context: str) -> str:
    """ConfigCat's hash of a sensitive comparison value: sha256(text + salt + context)."""
    return hashlib.sha256(text + salt.encode() + context.encode()).hexdigest()


def compile_environment(spec: EnvironmentSpec, salt: str) -> dict[str, Any]:
    """The config_v6 document of one environment (without `p.u`/`p.r`: the server adds them)."""
    segment_names = list(spec.segments)
    segments = [
        {
            "n": name,
            "r": [
                _user_condition(c, salt, name, f"segments.{name}[{i}]", segment=True)
                for i, c in enumerate(conditions)
            ]
            or _fail(f"segments.{name}", "a segment needs at least one condition"),
        }
        for name, conditions in spec.segments.items()
    ]
    types = {key: _setting_type(s, f"settings.{key}") for key, s in spec.settings.items()}
    flags = {
        key: _setting(key, setting, types, segment_names, salt)
        for key, setting in spec.settings.items()
    }
    _check_cycles(spec)
    config: dict[str, Any] = {"p": {"s": salt}, "f": flags}
    if segments:
        config["s"] = segments
    return config


def _setting(
    key: str, spec: SettingSpec, types: dict[str, int], segments: list[str], salt: str
) -> dict[str, Any]:
    where = f"settings.{key}"
    kind = types[key]
    out: dict[str, Any] = {"t": kind}
    if spec.percentage_attribute is not None:
        out["a"] = spec.percentage_attribute
    rules: list[dict[str, Any]] = []
    for index, rule in enumerate(spec.rules):
        at = f"{where}.rules[{index}]"
        if not rule.when:
            _fail(at, "`when` needs at least one condition")
        conditions = [
            _condition(c, key, types, segments, salt, f"{at}.when[{i}]")
            for i, c in enumerate(rule.when)
        ]
        if (rule.serve is msgspec.UNSET) == (not rule.percentages):
            _fail(at, "give either `serve` or `percentages`")
        if rule.percentages:
            if rule.variation_id is not None:
                _fail(at, "`variation_id` goes with `serve`; percentages carry their own")
            rules.append({"c": conditions, "p": _percentages(key, rule.percentages, kind, at)})
        else:
            served = _value(rule.serve, kind, f"{at}.serve")
            rules.append(
                {
                    "c": conditions,
                    "s": {"v": served, "i": _variation(key, served, rule.variation_id)},
                }
            )
    if rules:
        out["r"] = rules
    if spec.percentages:
        out["p"] = _percentages(key, spec.percentages, kind, where)
    value = _value(spec.value, kind, f"{where}.value")
    out["v"] = value
    out["i"] = _variation(key, value, spec.variation_id)
    return out


def _setting_type(spec: SettingSpec, where: str) -> int:
    if spec.type not in SETTING_TYPES:
        _fail(f"{where}.type", f"unknown type '{spec.type}' (one of: {', '.join(SETTING_TYPES)})")
    return SETTING_TYPES[spec.type]


def _value(value: Any, kind: int, where: str) -> dict[str, Any]:
    """A config_v6 SettingValue, refusing a value of another type than the setting's."""
    ok = {
        0: isinstance(value, bool),
        1: isinstance(value, str),
        2: isinstance(value, int) and not isinstance(value, bool),
        3: isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]
    if not ok:
        name = next(n for n, k in SETTING_TYPES.items() if k == kind)
        _fail(where, f"{value!r} is not a {name} value")
    return {_VALUE_KEYS[kind]: float(value) if kind == 3 else value}


def _variation(key: str, value: dict[str, Any], given: str | None) -> str:
    """The given variation id, or one derived from the value: one id per distinct value of a
    setting, stable across applies."""
    if given is not None:
        return given
    return hashlib.sha1(f"{key}\0{json.dumps(value)}".encode()).hexdigest()[:8]


def _percentages(
    key: str, options: list[PercentageSpec], kind: int, where: str
) -> list[dict[str, Any]]:
    out = []
    for index, option in enumerate(options):
        at = f"{where}.percentages[{index}]"
        if not 0 <= option.percent <= 100:
            _fail(at, f"percent {option.percent} is not between 0 and 100")
        value = _value(option.value, kind, f"{at}.value")
        out.append(
            {"p": option.percent, "v": value, "i": _variation(key, value, option.variation_id)}
        )
    total = sum(o.percent for o in options)
    if total != 100:
        _fail(f"{where}.percentages", f"the percentages add up to {total}, not 100")
    return out


def _condition(
    spec: ConditionSpec,
    key: str,
    types: dict[str, int],
    segments: list[str],
    salt: str,
    where: str,
) -> dict[str, Any]:
    forms = [
        spec.attribute is not None,
        spec.in_segment is not None or spec.not_in_segment is not None,
        spec.flag is not None,
    ]
    if sum(forms) != 1:
        _fail(where, "a condition has one of `attribute`, `in_segment`/`not_in_segment`, `flag`")
    if spec.attribute is not None:
        return {"u": _user_condition(spec, salt, key, where, segment=False)}
    if spec.flag is not None:
        return {"p": _prerequisite(spec, spec.flag, types, where)}
    if spec.in_segment is not None and spec.not_in_segment is not None:
        _fail(where, "give `in_segment` or `not_in_segment`, not both")
    name = spec.in_segment if spec.in_segment is not None else spec.not_in_segment
    if name not in segments:
        _fail(where, f"unknown segment '{name}' (segments: {', '.join(segments) or 'none'})")
    return {"s": {"s": segments.index(name), "c": 0 if spec.in_segment is not None else 1}}


def _prerequisite(
    spec: ConditionSpec, flag: str, types: dict[str, int], where: str
) -> dict[str, Any]:
    if flag not in types:
        _fail(where, f"unknown prerequisite flag '{flag}'")
    if (spec.equals is msgspec.UNSET) == (spec.not_equals is msgspec.UNSET):
        _fail(where, "a prerequisite condition has one of `equals` or `not_equals`")
    if spec.equals is not msgspec.UNSET:
        return {"f": flag, "c": 0, "v": _value(spec.equals, types[flag], f"{where}.equals")}
    return {"f": flag, "c": 1, "v": _value(spec.not_equals, types[flag], f"{where}.not_equals")}


def _user_condition(
    spec: ConditionSpec, salt: str, context: str, where: str, *, segment: bool
) -> dict[str, Any]:
    if segment and spec.attribute is None:
        _fail(where, "a segment's conditions test user attributes (`attribute`)")
    if not spec.attribute:
        _fail(where, "`attribute` must not be empty")
    if spec.comparator not in COMPARATORS:
        _fail(
            where,
            f"unknown comparator {spec.comparator!r} (one of: {', '.join(COMPARATORS)})",
        )
    number, kind = COMPARATORS[spec.comparator]
    out: dict[str, Any] = {"a": spec.attribute, "c": number}
    if kind == "l":
        if spec.values is None or spec.value is not msgspec.UNSET:
            _fail(where, f"'{spec.comparator}' takes `values` (a list of text)")
        if not spec.values:
            _fail(where, "`values` must not be empty")
        out["l"] = [_hashed_item(v, number, salt, context) for v in spec.values]
    elif spec.value is msgspec.UNSET or spec.values is not None:
        _fail(where, f"'{spec.comparator}' takes one `value`")
    elif kind == "s":
        if not isinstance(spec.value, str):
            _fail(where, f"'{spec.comparator}' compares with text, not {spec.value!r}")
        value = spec.value
        out["s"] = sensitive_hash(value.encode(), salt, context) if number in HASHED else value
    else:
        out["d"] = _number(spec.value, spec.comparator, where)
    return out


def _hashed_item(item: str, comparator: int, salt: str, context: str) -> str:
    if comparator not in HASHED:
        return item
    raw = item.encode()
    digest = sensitive_hash(raw, salt, context)
    return f"{len(raw)}_{digest}" if comparator in PREFIX_HASHED else digest


def _number(value: Any, comparator: str, where: str) -> float:
    """A number comparison value; date comparators also take a YAML date or timestamp."""
    if comparator.startswith("date") and isinstance(value, date):
        moment = value if isinstance(value, datetime) else datetime(*value.timetuple()[:3])
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    wanted = "a number or a date" if comparator.startswith("date") else "a number"
    _fail(where, f"'{comparator}' compares with {wanted}, not {value!r}")


def _check_cycles(spec: EnvironmentSpec) -> None:
    depends = {
        key: [c.flag for rule in s.rules for c in rule.when if c.flag is not None]
        for key, s in spec.settings.items()
    }
    done: set[str] = set()

    def visit(key: str, path: list[str]) -> None:
        if key in path:
            cycle = " -> ".join([*path[path.index(key) :], key])
            _fail(f"settings.{path[0]}", f"prerequisite flags form a cycle: {cycle}")
        if key in done:
            return
        for other in depends[key]:
            visit(other, [*path, key])
        done.add(key)

    for key in depends:
        visit(key, [])


def _fail(where: str, message: str) -> NoReturn:
    raise FlagError(f"{where}: {message}")
