"""Evaluates a config_v6 setting for a user exactly as ConfigCat's SDKs do.

One evaluator serves `trackway flags evaluate` and the OFREP endpoints, so a server-side
answer is the one an SDK holding the same config would give: targeting rules in order
(conditions ANDed, first match wins), every comparator (text, SemVer, number, date,
array, and the SHA-256 hashed ones salted with the config's `p.s` and the flag key or
segment name), segments, prerequisite flags, percentage options bucketed by SHA-1 of
the flag key and any attribute, and variation ids. The edge cases follow the official
Python SDK (`configcat-client`, its `rolloutevaluator.py`), which the tests run side by
side: an attribute that is missing or of the wrong form skips its rule; a config error
(a value of the wrong type, a prerequisite cycle) gives the caller's default and an error.
"""

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import semver

from trackway.flags.comparators import COMPARATORS, HASHED
from trackway.flags.compile import sensitive_hash

Reason = Literal["TARGETING_MATCH", "SPLIT", "DEFAULT", "ERROR"]
_T = TypeVar("_T")
_PREDEFINED = ("Identifier", "Email", "Country")
_VALUE_KEYS = {0: ("b", bool), 1: ("s", str), 2: ("i", int), 3: ("d", float)}
_COMPARATOR_TEXTS = (
    "IS ONE OF",
    "IS NOT ONE OF",
    "CONTAINS ANY OF",
    "NOT CONTAINS ANY OF",
    "IS ONE OF",
    "IS NOT ONE OF",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "IS ONE OF",
    "IS NOT ONE OF",
    "BEFORE",
    "AFTER",
    "EQUALS",
    "NOT EQUALS",
    "STARTS WITH ANY OF",
    "NOT STARTS WITH ANY OF",
    "ENDS WITH ANY OF",
    "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF",
    "ARRAY NOT CONTAINS ANY OF",
    "EQUALS",
    "NOT EQUALS",
    "STARTS WITH ANY OF",
    "NOT STARTS WITH ANY OF",
    "ENDS WITH ANY OF",
    "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF",
    "ARRAY NOT CONTAINS ANY OF",
)
_VALUE_KIND = {number: kind for number, kind in COMPARATORS.values()}


@dataclass(frozen=True)
class User:
    """The user a flag is evaluated for: ConfigCat's User Object.

    `attributes` are keyed by ConfigCat's names: `Identifier`, `Email`, `Country` and any
    custom attribute (text, number, datetime or list of text).
    """

    identifier: str
    attributes: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        identifier: str,
        email: str | None = None,
        country: str | None = None,
        custom: Mapping[str, Any] | None = None,
    ) -> "User":
        """A user as the SDKs build one (a custom attribute never overrides the predefined)."""
        attributes = {k: v for k, v in (custom or {}).items() if k not in _PREDEFINED}
        for name, value in zip(_PREDEFINED, (identifier, email, country), strict=True):
            if value is not None:
                attributes[name] = value
        return cls(identifier, attributes)

    @classmethod
    def from_json(cls, data: Any) -> "User":
        """A user from JSON: `identifier` (required), `custom` (an object of attributes) and
        any other key as an attribute (see `from_attributes`)."""
        if not isinstance(data, dict):
            raise ValueError('the user is a JSON object such as {"identifier": "42"}')
        attributes = {k: v for k, v in data.items() if k not in ("identifier", "Identifier")}
        custom = attributes.pop("custom", {})
        if not isinstance(custom, dict):
            raise ValueError("the user's `custom` is an object of attributes")
        identifier = data.get("identifier", data.get("Identifier"))
        if not isinstance(identifier, str):
            raise ValueError("the user needs an `identifier` (text)")
        return cls.from_attributes(identifier, {**custom, **attributes})

    @classmethod
    def from_attributes(cls, identifier: str, attributes: Mapping[str, Any]) -> "User":
        """A user from an identifier and JSON attributes: `email`/`Email` and
        `country`/`Country` are ConfigCat's predefined attributes, every other name a custom
        one. Values are text, numbers, booleans or lists of text; null means not set."""
        fields: dict[str, str] = {}
        custom: dict[str, Any] = {}
        for name, value in attributes.items():
            if value is None:
                continue
            if name in ("email", "Email", "country", "Country"):
                if not isinstance(value, str):
                    raise ValueError(f"the attribute `{name}` must be text")
                fields[name.lower()] = value
            elif isinstance(value, str | int | float) or _is_text_list(value):
                custom[name] = value
            else:
                raise ValueError(
                    f"the attribute `{name}` must be text, a number, a boolean or a list of text"
                )
        return cls.of(identifier, fields.get("email"), fields.get("country"), custom)

    def to_json(self) -> dict[str, Any]:
        """The attributes as JSON (datetimes as ISO 8601)."""
        return {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.attributes.items()
        }


@dataclass(frozen=True)
class PercentageMatch:
    """The percentage option that served the value, and the bucket that chose it."""

    index: int
    percent: int
    attribute: str
    bucket: int


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating one setting: what an SDK's evaluation details hold, plus
    `trace`, the readable steps (filled when asked for)."""

    key: str
    value: Any
    variation_id: str | None
    rule: int | None = None
    option: PercentageMatch | None = None
    error: str | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def reason(self) -> Reason:
        """OpenFeature's name for why this value: a % option, a rule, the default."""
        if self.error is not None:
            return "ERROR"
        if self.option is not None:  # also inside a rule: as the SDK hooks report it
            return "SPLIT"
        return "TARGETING_MATCH" if self.rule is not None else "DEFAULT"

    @property
    def why(self) -> str:
        """One sentence: the matched rule or option, or why the default was served."""
        if self.error is not None:
            return f"error: {self.error}; the default value was returned"
        parts = []
        if self.rule is not None:
            parts.append(f"targeting rule {self.rule + 1} matched")
        if self.option is not None:
            o = self.option
            parts.append(
                f"User.{o.attribute} falls in bucket {o.bucket} of 100:"
                f" percentage option {o.index + 1} ({o.percent}%)"
            )
        return "; ".join(parts) or "no targeting rule or percentage option applied"

    def to_json(self) -> dict[str, Any]:
        """The evaluation as JSON (`trace` included)."""
        option = self.option
        return {
            "key": self.key,
            "value": self.value,
            "variation_id": self.variation_id,
            "reason": self.reason,
            "why": self.why,
            "matched_rule": self.rule,
            "matched_percentage_option": (
                None
                if option is None
                else {
                    "index": option.index,
                    "percent": option.percent,
                    "attribute": option.attribute,
                    "bucket": option.bucket,
                }
            ),
            "error": self.error,
            "trace": self.trace,
        }


class EvaluationError(Exception):
    """A config the SDKs cannot evaluate (the caller's default is returned)."""


def evaluate(
    config: Mapping[str, Any],
    key: str,
    user: User | None,
    default: Any = None,
    default_variation_id: str | None = None,
    *,
    trace: bool = False,
) -> Evaluation:
    """Evaluate setting `key` of `config` for `user`, as `ConfigCatClient.get_value_details`."""
    settings = config.get("f") or {}
    log: list[str] | None = [] if trace else None
    if key not in settings:
        error = f"the key '{key}' was not found in the config (keys: {', '.join(settings)})"
        return Evaluation(key, default, default_variation_id, error=error, trace=log or [])
    run = _Run(config, user, log)
    try:
        value, variation, rule, option = run.setting(key, default_variation_id, [])
    except Exception as exc:  # as the SDKs: a config they cannot evaluate gives the default
        message = str(exc) or type(exc).__name__
        if log is not None:
            log.append(f"error: {message}")
        return Evaluation(key, default, default_variation_id, error=message, trace=log or [])
    return Evaluation(key, value, variation, rule, option, trace=log or [])


def percentage_bucket(key: str, attribute_text: str) -> int:
    """The user's bucket (0 to 99) for a setting's percentage options."""
    return int(hashlib.sha1((key + attribute_text).encode()).hexdigest()[:7], 16) % 100


def attribute_text(value: Any) -> str:
    """A user attribute as the text the text comparators and bucketing see."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        value = _seconds(value)
    elif _is_text_list(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if "e" not in str(value) and value.is_integer():
            return str(int(value))
    return str(value)


def setting_value(holder: Mapping[str, Any], setting_type: Any) -> Any:
    """The value `holder["v"]` of a setting of type `setting_type`; ValueError if wrong."""
    given = holder.get("v")
    if given is None:
        raise ValueError("a value is missing")
    if setting_type not in _VALUE_KEYS:
        raise ValueError(f"unsupported setting type {setting_type!r}")
    name, kind = _VALUE_KEYS[setting_type]
    value = given.get(name)
    # int and float stand for each other, as in the SDKs (JSON does not tell 1 from 1.0).
    numeric = {type(value), kind} == {int, float}
    if value is None or (type(value) is not kind and not numeric):
        raise ValueError(f"the setting value is not of the expected type {kind.__name__}")
    return value


def _value_type(holder: Mapping[str, Any]) -> type | None:
    given = holder.get("v")
    if given is not None:
        for name, kind in _VALUE_KEYS.values():
            if given.get(name) is not None:
                return kind
    return None


def _seconds(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _number(value: Any) -> float:
    return float(value.replace(",", ".")) if isinstance(value, str) else float(value)


def _text_list(value: Any) -> list[str]:
    items = json.loads(value) if isinstance(value, str) else value
    if not _is_text_list(items):
        raise ValueError("not a list of text")
    result: list[str] = items
    return result


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"'{v}'" for v in value) + "]"
    return f"'{value}'"


class _Run:
    """One evaluation: the config, the user and the trace being written."""

    def __init__(self, config: Mapping[str, Any], user: User | None, log: list[str] | None):
        self.settings: Mapping[str, Any] = config.get("f") or {}
        self.segments: list[Any] = config.get("s") or []
        self.salt: str = (config.get("p") or {}).get("s", "")
        self.user = user
        self.log = log
        self.depth = 0

    def note(self, line: str) -> None:
        if self.log is not None:
            self.log.append("  " * self.depth + line)

    def setting(
        self, key: str, default_variation_id: str | None, visited: list[str]
    ) -> tuple[Any, str | None, int | None, PercentageMatch | None]:
        setting = self.settings[key]
        kind = setting.get("t")
        attribute = setting.get("a")
        if self.log is not None:
            self.note(f"evaluating '{key}'")
        self.depth += 1
        try:
            for index, rule in enumerate(setting.get("r") or []):
                conditions = rule.get("c") or []
                served = rule.get("s")
                if conditions:
                    value = setting_value(served, kind) if served is not None else None
                    if not self.conditions(conditions, key, visited, index):
                        continue
                    if served is not None:
                        if self.log is not None:
                            self.note(f"rule {index + 1} matched: serving {value!r}")
                        return value, served.get("i", default_variation_id), index, None
                picked = self.percentages(
                    rule.get("p") or [], key, kind, attribute, default_variation_id
                )
                if picked is not None:
                    return picked[0], picked[1], index, picked[2]
                if self.log is not None:
                    self.note(f"rule {index + 1}: its percentage options do not apply; next rule")
            picked = self.percentages(
                setting.get("p") or [], key, kind, attribute, default_variation_id
            )
            if picked is not None:
                return picked[0], picked[1], None, picked[2]
            value = setting_value(setting, kind)
            if self.log is not None:
                self.note(f"serving the flag's value {value!r}")
            return value, setting.get("i", default_variation_id), None, None
        finally:
            self.depth -= 1

    def percentages(
        self,
        options: list[Any],
        key: str,
        kind: int,
        attribute: str | None,
        default_variation_id: str | None,
    ) -> tuple[Any, str | None, PercentageMatch] | None:
        if not options:
            return None
        if self.user is None:
            if self.log is not None:
                self.note("percentage options skipped: no user")
            return None
        name = attribute if attribute is not None else "Identifier"
        base = self.user.identifier if attribute is None else self.user.attributes.get(attribute)
        if base is None:
            if self.log is not None:
                self.note(f"percentage options skipped: the User.{name} attribute is missing")
            return None
        bucket = percentage_bucket(key, attribute_text(base))
        total = 0
        for index, option in enumerate(options):
            total += option.get("p", 0)
            if bucket < total:
                value = setting_value(option, kind)
                if self.log is not None:
                    self.note(
                        f"User.{name} is in bucket {bucket}: percentage option {index + 1}"
                        f" ({option.get('p', 0)}%) serves {value!r}"
                    )
                match = PercentageMatch(index, option.get("p", 0), name, bucket)
                return value, option.get("i", default_variation_id), match
        if self.log is not None:
            self.note(f"User.{name} is in bucket {bucket}, past every percentage option")
        return None

    def conditions(self, conditions: list[Any], key: str, visited: list[str], rule: int) -> bool:
        for condition in conditions:
            if "u" in condition and condition["u"] is not None:
                ok, error = self.user_condition(condition["u"], key, key)
            elif "s" in condition and condition["s"] is not None:
                ok, error = self.segment_condition(condition["s"], key)
            elif "p" in condition and condition["p"] is not None:
                ok, error = self.prerequisite(condition["p"], key, visited), None
            else:
                continue
            if not ok or error:
                why = f"skipped: {error}" if error else "no match"
                if self.log is not None:
                    self.note(f"rule {rule + 1} {why}")
                return False
        return True

    def user_condition(
        self, condition: Mapping[str, Any], key: str, context: str
    ) -> tuple[bool, str | None]:
        name = condition.get("a")
        comparator = condition.get("c")
        expected = condition.get(_VALUE_KIND[comparator])  # type: ignore[index]
        if name is None:
            raise EvaluationError("a condition has no attribute name")
        if self.user is None:
            return False, "no user"
        actual = self.user.attributes.get(str(name))
        if actual is None or actual == "":
            return False, f"the User.{name} attribute is missing"
        try:
            ok = self.compare(comparator, actual, expected, context)  # type: ignore[arg-type]
        except _InvalidAttribute as exc:
            return False, f"the User.{name} attribute is invalid ({exc})"
        if self.log is not None:
            shown = "<hashed value>" if comparator in HASHED else _show(expected)
            verb = _COMPARATOR_TEXTS[comparator]  # type: ignore[index]
            if self.log is not None:
                self.note(f"User.{name} {verb} {shown}: {'true' if ok else 'false'}")
        return ok, None

    def compare(self, c: int, actual: Any, expected: Any, context: str) -> bool:
        if c in (0, 1):
            return (attribute_text(actual) in expected) == (c == 0)
        if c in (2, 3):
            found = any(item in attribute_text(actual) for item in expected)
            return found == (c == 2)
        if 4 <= c <= 9:
            return self.semver(c, actual, expected)
        if 10 <= c <= 15:
            number = _guard(_number, actual, "is not a valid decimal number")
            return _ORDER[c - 10](number, float(expected))
        if c in (16, 17):
            found = self.hash(attribute_text(actual).encode(), context) in expected
            return found == (c == 16)
        if c in (18, 19):
            when = (
                _seconds(actual)
                if isinstance(actual, datetime)
                else _guard(_number, actual, "is not a valid Unix timestamp")
            )
            return when < float(expected) if c == 18 else when > float(expected)
        if c in (20, 21):
            digest = self.hash(attribute_text(actual).encode(), context)
            return bool(digest == expected) == (c == 20)
        if 22 <= c <= 25:
            return self.hashed_affix(c, actual, expected, context)
        if c in (26, 27, 34, 35):
            items = _guard(_text_list, actual, "is not a valid string array")
            if c in (26, 27):
                items = [self.hash(i.encode(), context) for i in items]
            found = any(item in items for item in expected)
            return found == (c in (26, 34))
        if c in (28, 29):
            return bool(attribute_text(actual) == expected) == (c == 28)
        if 30 <= c <= 33:
            text = attribute_text(actual)
            test = text.startswith if c in (30, 31) else text.endswith
            found = any(test(item) for item in expected)
            return found == (c in (30, 32))
        raise EvaluationError(f"unknown comparator {c!r}")

    def semver(self, c: int, actual: Any, expected: Any) -> bool:
        version = str(actual).strip()
        if c in (4, 5):
            match = False
            for item in filter(None, (x.strip() for x in expected)):
                match = _semver_match(version, "==" + str(item)) or match
            return match == (c == 4)
        return _semver_match(version, _COMPARATOR_TEXTS[c] + str(expected).strip())

    def hashed_affix(self, c: int, actual: Any, expected: list[str], context: str) -> bool:
        for item in expected:
            length_text, _, digest = item.partition("_")
            if not _:
                raise EvaluationError(f"a hashed comparison value has no length: {item!r}")
            length = int(length_text)
            raw = attribute_text(actual).encode()
            if len(raw) >= length:
                part = raw[:length] if c in (22, 23) else raw[len(raw) - length :]
                if self.hash(part, context) == digest:
                    return c in (22, 24)
        return c in (23, 25)

    def hash(self, raw: bytes, context: str) -> str:
        return sensitive_hash(raw, self.salt, context)

    def segment_condition(self, condition: Mapping[str, Any], key: str) -> tuple[bool, str | None]:
        index = condition.get("s")
        if not isinstance(index, int) or not 0 <= index < len(self.segments):
            raise EvaluationError(f"segment index {index!r} is out of range")
        segment = self.segments[index]
        name = segment.get("n", "")
        comparator = condition.get("c")
        if self.user is None:
            return False, "no user"
        if comparator not in (0, 1):
            raise EvaluationError(f"unknown segment comparator {comparator!r}")
        inside, error = True, None
        for inner in segment.get("r") or []:
            ok, error = self.user_condition(inner, key, name)
            if not ok:
                inside = False
                break
        result = inside if comparator == 0 else not inside
        verb = "IS IN" if comparator == 0 else "IS NOT IN"
        if self.log is not None:
            self.note(
                f"User {verb} SEGMENT '{name}': {'true' if result and not error else 'false'}"
            )
        return result, error

    def prerequisite(self, condition: Mapping[str, Any], key: str, visited: list[str]) -> bool:
        other = condition.get("f")
        comparator = condition.get("c")
        if other is None or self.settings.get(other) is None:
            raise EvaluationError(f"prerequisite flag {other!r} is missing")
        kind = self.settings[other].get("t")
        expected = setting_value(condition, kind)
        if _value_type(condition) is not _VALUE_KEYS.get(kind, (None, None))[1]:
            raise EvaluationError(
                f"type mismatch between comparison value {expected!r} and prerequisite flag"
                f" '{other}'"
            )
        visited.append(key)
        if other in visited:
            cycle = " -> ".join(f"'{k}'" for k in [*visited, other])
            raise EvaluationError(f"circular dependency between the flags {cycle}")
        value = self.setting(other, None, visited)[0]
        visited.pop()
        if comparator not in (0, 1):
            raise EvaluationError(f"unknown prerequisite comparator {comparator!r}")
        result: bool = bool(value == expected) == (comparator == 0)
        verb = "EQUALS" if comparator == 0 else "DOES NOT EQUAL"
        if self.log is not None:
            self.note(f"Flag '{other}' {verb} {expected!r}: {'true' if result else 'false'}")
        return result


@functools.lru_cache(maxsize=4096)
def _semver_match(version: str, expression: str) -> bool:
    """semver's `Version.parse(version).match(expression)`, as the Python SDK calls it;
    cached because parsing dominates and apps have few distinct versions."""
    try:
        return bool(semver.Version.parse(version).match(expression))
    except ValueError:
        raise _InvalidAttribute(f"'{version}' is not a valid semantic version") from None


class _InvalidAttribute(Exception):
    """The attribute's value has the wrong form for the comparator: the rule is skipped."""


def _guard(parse: Callable[[Any], _T], value: Any, problem: str) -> _T:
    try:
        return parse(value)
    except ValueError:
        raise _InvalidAttribute(f"'{value}' {problem}") from None


_ORDER = (
    float.__eq__,
    float.__ne__,
    float.__lt__,
    float.__le__,
    float.__gt__,
    float.__ge__,
)
