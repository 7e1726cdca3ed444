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

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from trackway.flags.comparators import COMPARATORS, HASHED
from trackway.flags.compare import (
    COMPARATOR_TEXTS,
    EvaluationError,
    InvalidAttribute,
    attribute_text,
    comparison,
    is_text_list,
)

Reason = Literal["TARGETING_MATCH", "SPLIT", "DEFAULT", "ERROR"]
_PREDEFINED = ("Identifier", "Email", "Country")
_VALUE_KEYS = {0: ("b", bool), 1: ("s", str), 2: ("i", int), 3: ("d", float)}
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
            elif isinstance(value, str | int | float) or is_text_list(value):
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


Outcome = tuple[Any, str | None, int | None, PercentageMatch | None]
"""A setting's evaluation: value, variation id, matched rule, matched percentage option."""

_Check = Callable[["_Run"], tuple[bool, str | None]]
"""A prepared condition: (holds, why it was skipped) for the run's user."""

_ABSENT: Any = object()  # a variation id the config does not give: the caller's default
_HOLDS: tuple[bool, str | None] = (True, None)
_FAILS: tuple[bool, str | None] = (False, None)
_NO_USER: tuple[bool, str | None] = (False, "no user")


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
    return Evaluator(config).evaluate(key, user, default, default_variation_id, trace=trace)


def percentage_bucket(key: str, attribute_text: str) -> int:
    """The user's bucket (0 to 99) for a setting's percentage options."""
    return int(hashlib.sha1((key + attribute_text).encode()).hexdigest()[:7], 16) % 100


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


class Evaluator:
    """A config_v6 document prepared for evaluation.

    Each setting is turned, the first time it is evaluated, into tuples of rules whose
    conditions are functions of the user (`trackway.flags.compare`), with its values
    already type-checked; a server evaluating one config for many users reads the JSON
    once. Preparing never fails: what the SDKs would find wrong in the config (a value of
    the wrong type, an unknown comparator, a missing prerequisite) is raised when an
    evaluation reaches it, as the SDKs do, and gives the caller's default and an error.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._raw: Mapping[str, Any] = config.get("f") or {}
        self._raw_segments: list[Any] = config.get("s") or []
        self._salt: str = (config.get("p") or {}).get("s", "")
        self._settings: dict[str, _Setting] = {}
        self._segments: dict[int, tuple[str, list[_Check]]] = {}

    def evaluate(
        self,
        key: str,
        user: User | None,
        default: Any = None,
        default_variation_id: str | None = None,
        *,
        trace: bool = False,
    ) -> Evaluation:
        """Setting `key` for `user`, as `ConfigCatClient.get_value_details`; with `trace`,
        the steps are written to the result's `trace`."""
        log: list[str] | None = [] if trace else None
        if key not in self._raw:
            error = f"the key '{key}' was not found in the config (keys: {', '.join(self._raw)})"
            return Evaluation(key, default, default_variation_id, error=error, trace=log or [])
        try:
            value, variation, rule, option = _Run(self, user, log).setting(
                key, default_variation_id
            )
        except Exception as exc:  # as the SDKs: a config they cannot evaluate gives the default
            message = _message(exc)
            if log is not None:
                log.append(f"error: {message}")
            return Evaluation(key, default, default_variation_id, error=message, trace=log or [])
        return Evaluation(key, value, variation, rule, option, trace=log or [])

    def evaluate_all(self, user: User | None) -> list[tuple[str, Outcome | str]]:
        """Every setting for `user`, in the config's order, without defaults: its outcome,
        or the error's text. A prerequisite flag is evaluated once for all that need it."""
        run = _Run(self, user, None)
        results: list[tuple[str, Outcome | str]] = []
        for key in self._raw:
            run.visited.clear()
            try:
                results.append((key, run.setting(key, None)))
            except Exception as exc:
                results.append((key, _message(exc)))
        return results

    def setting(self, key: str) -> "_Setting":
        prepared = self._settings.get(key)
        if prepared is None:
            prepared = self._settings[key] = self._prepare(key, self._raw[key])
        return prepared

    def _prepare(self, key: str, raw: Any) -> "_Setting":
        try:
            kind = raw.get("t")
            rules = tuple(
                self._rule(index, rule, key, kind) for index, rule in enumerate(raw.get("r") or [])
            )
            attribute = raw.get("a")
            return _Setting(
                key,
                attribute,
                "Identifier" if attribute is None else attribute,
                rules,
                _options(raw.get("p") or [], kind),
                _Value(raw, kind),
                raw.get("i", _ABSENT),
            )
        except Exception as exc:
            return _Setting(key, None, "", (), (), _Value({}, None), None, failure=exc)

    def _rule(self, index: int, rule: Any, key: str, kind: Any) -> "_Rule":
        try:
            conditions = rule.get("c") or []
            served = rule.get("s")
        except Exception as exc:
            return _Rule(index, None, None, None, (), failure=exc)
        checks = None
        if conditions:  # [{}] too: no condition to check, so the rule's value is served
            found = (self._check(condition, key) for condition in conditions)
            checks = tuple(check for check in found if check is not None)
        has_value = checks is not None and served is not None
        return _Rule(
            index,
            checks,
            _Value(served, kind) if has_value else None,
            served.get("i", _ABSENT) if has_value and isinstance(served, Mapping) else None,
            _options(rule.get("p") or [], kind),
        )

    def _check(self, condition: Any, key: str) -> _Check | None:
        """One condition of a rule; None: it has no kind the SDKs know (they skip it)."""
        try:
            if "u" in condition and condition["u"] is not None:
                return self._user_check(condition["u"], key)
            if "s" in condition and condition["s"] is not None:
                return self._segment_check(condition["s"])
            if "p" in condition and condition["p"] is not None:
                return self._prerequisite_check(condition["p"], key)
        except Exception as exc:
            return _failing(exc)
        return None

    def _user_check(self, condition: Mapping[str, Any], context: str) -> _Check:
        name = condition.get("a")
        comparator = condition.get("c")
        expected = condition.get(_VALUE_KIND[comparator])  # type: ignore[index]
        if name is None:
            raise EvaluationError("a condition has no attribute name")
        try:
            test = comparison(comparator, expected, self._salt, context)  # type: ignore[arg-type]
        except Exception as exc:
            test = _raising(exc)
        attribute = str(name)
        missing = (False, f"the User.{name} attribute is missing")
        shown = "<hashed value>" if comparator in HASHED else _show(expected)
        label = f"User.{name} {COMPARATOR_TEXTS[comparator]} {shown}: "  # type: ignore[index]

        def check(run: _Run) -> tuple[bool, str | None]:
            user = run.user
            if user is None:
                return _NO_USER
            actual = user.attributes.get(attribute)
            if actual is None or actual == "":
                return missing
            try:
                ok = test(actual)
            except InvalidAttribute as exc:
                return False, f"the User.{name} attribute is invalid ({exc})"
            if run.log is not None:
                run.note(label + ("true" if ok else "false"))
            return _HOLDS if ok else _FAILS

        return check

    def _segment_check(self, condition: Mapping[str, Any]) -> _Check:
        index = condition.get("s")
        if not isinstance(index, int) or not 0 <= index < len(self._raw_segments):
            raise EvaluationError(f"segment index {index!r} is out of range")
        name, inner = self._segment(index)
        comparator = condition.get("c")
        verb = "IS IN" if comparator == 0 else "IS NOT IN"

        def check(run: _Run) -> tuple[bool, str | None]:
            if run.user is None:
                return _NO_USER
            if comparator not in (0, 1):
                raise EvaluationError(f"unknown segment comparator {comparator!r}")
            known = run.segments.get(index)
            if known is None:
                inside, error = True, None
                for inner_check in inner:
                    ok, error = inner_check(run)
                    if not ok:
                        inside = False
                        break
                known = inside, error
                if run.log is None:  # traced, every step is written each time
                    run.segments[index] = known
            inside, error = known
            result = inside if comparator == 0 else not inside
            if run.log is not None:
                run.note(
                    f"User {verb} SEGMENT '{name}': {'true' if result and not error else 'false'}"
                )
            return result, error

        return check

    def _segment(self, index: int) -> tuple[str, list[_Check]]:
        prepared = self._segments.get(index)
        if prepared is None:
            segment = self._raw_segments[index]
            name = segment.get("n", "")
            inner = []
            for condition in segment.get("r") or []:
                try:
                    inner.append(self._user_check(condition, name))
                except Exception as exc:
                    inner.append(_failing(exc))
            prepared = self._segments[index] = name, inner
        return prepared

    def _prerequisite_check(self, condition: Mapping[str, Any], key: str) -> _Check:
        other = condition.get("f")
        comparator = condition.get("c")
        if other is None or self._raw.get(other) is None:
            raise EvaluationError(f"prerequisite flag {other!r} is missing")
        kind = self._raw[other].get("t")
        expected = setting_value(condition, kind)
        if _value_type(condition) is not _VALUE_KEYS.get(kind, (None, None))[1]:
            raise EvaluationError(
                f"type mismatch between comparison value {expected!r} and prerequisite flag"
                f" '{other}'"
            )
        verb = "EQUALS" if comparator == 0 else "DOES NOT EQUAL"

        def check(run: _Run) -> tuple[bool, str | None]:
            value = run.prerequisite(key, other)
            if comparator not in (0, 1):
                raise EvaluationError(f"unknown prerequisite comparator {comparator!r}")
            result: bool = bool(value == expected) == (comparator == 0)
            if run.log is not None:
                run.note(f"Flag '{other}' {verb} {expected!r}: {'true' if result else 'false'}")
            return _HOLDS if result else _FAILS

        return check


class _Value:
    """A value of the config, type-checked once; what was wrong with it is raised on use."""

    __slots__ = ("error", "value")

    def __init__(self, holder: Any, kind: Any) -> None:
        try:
            self.value, self.error = setting_value(holder, kind), None
        except Exception as exc:
            self.value, self.error = None, exc

    def get(self) -> Any:
        if self.error is not None:
            raise _again(self.error)
        return self.value


@dataclass(frozen=True, slots=True)
class _Option:
    """A percentage option: it serves users whose bucket is below `total`."""

    total: Any
    percent: Any
    value: _Value
    variation: Any
    failure: Exception | None = None


@dataclass(frozen=True, slots=True)
class _Rule:
    """A targeting rule: `checks` None when it has no conditions (only percentages)."""

    index: int
    checks: tuple[_Check, ...] | None
    value: _Value | None
    variation: Any
    options: tuple[_Option, ...]
    failure: Exception | None = None


@dataclass(frozen=True, slots=True)
class _Setting:
    key: str
    attribute: Any
    attribute_name: str
    rules: tuple[_Rule, ...]
    options: tuple[_Option, ...]
    value: _Value
    variation: Any
    failure: Exception | None = None


def _options(options: Any, kind: Any) -> tuple[_Option, ...]:
    prepared = []
    total = 0
    for option in options:
        try:
            percent = option.get("p", 0)
            total += percent
            prepared.append(_Option(total, percent, _Value(option, kind), option.get("i", _ABSENT)))
        except Exception as exc:  # raised once an evaluation gets this far
            prepared.append(_Option(None, None, _Value({}, None), None, failure=exc))
            break
    return tuple(prepared)


class _Run:
    """One evaluation (or, in `evaluate_all`, one per setting for the same user): the
    user, the trace being written, and what is already known about this user."""

    def __init__(self, evaluator: Evaluator, user: User | None, log: list[str] | None):
        self.evaluator = evaluator
        self.user = user
        self.log = log
        self.depth = 0
        self.visited: list[str] = []
        self.known: dict[str, Outcome] = {}
        self.segments: dict[int, tuple[bool, str | None]] = {}

    def note(self, line: str) -> None:
        if self.log is not None:
            self.log.append("  " * self.depth + line)

    def setting(self, key: str, default_variation_id: str | None) -> Outcome:
        # A setting evaluated without a default (prerequisites, evaluate_all) always gives
        # the same outcome for this user: remembered, unless the steps are being traced.
        memo = self.log is None and default_variation_id is None
        if memo and key in self.known:
            return self.known[key]
        setting = self.evaluator.setting(key)
        if setting.failure is not None:
            raise _again(setting.failure)
        if self.log is not None:
            self.note(f"evaluating '{key}'")
        self.depth += 1
        try:
            outcome = self._evaluate(setting, default_variation_id)
        finally:
            self.depth -= 1
        if memo:
            self.known[key] = outcome
        return outcome

    def _evaluate(self, setting: _Setting, default_variation_id: str | None) -> Outcome:
        log = self.log
        for rule in setting.rules:
            if rule.failure is not None:
                raise _again(rule.failure)
            index = rule.index
            if rule.checks is not None:
                value = rule.value.get() if rule.value is not None else None
                if not self._holds(rule.checks, index):
                    continue
                if rule.value is not None:
                    if log is not None:
                        self.note(f"rule {index + 1} matched: serving {value!r}")
                    return value, _variation(rule.variation, default_variation_id), index, None
            picked = self._percentages(setting, rule.options, default_variation_id)
            if picked is not None:
                return picked[0], picked[1], index, picked[2]
            if log is not None:
                self.note(f"rule {index + 1}: its percentage options do not apply; next rule")
        picked = self._percentages(setting, setting.options, default_variation_id)
        if picked is not None:
            return picked[0], picked[1], None, picked[2]
        value = setting.value.get()
        if log is not None:
            self.note(f"serving the flag's value {value!r}")
        return value, _variation(setting.variation, default_variation_id), None, None

    def _holds(self, checks: tuple[_Check, ...], rule: int) -> bool:
        for check in checks:
            ok, error = check(self)
            if not ok or error:
                if self.log is not None:
                    self.note(f"rule {rule + 1} {f'skipped: {error}' if error else 'no match'}")
                return False
        return True

    def _percentages(
        self, setting: _Setting, options: tuple[_Option, ...], default_variation_id: str | None
    ) -> tuple[Any, str | None, PercentageMatch] | None:
        if not options:
            return None
        user = self.user
        if user is None:
            if self.log is not None:
                self.note("percentage options skipped: no user")
            return None
        attribute, name = setting.attribute, setting.attribute_name
        base = user.identifier if attribute is None else user.attributes.get(attribute)
        if base is None:
            if self.log is not None:
                self.note(f"percentage options skipped: the User.{name} attribute is missing")
            return None
        bucket = percentage_bucket(setting.key, attribute_text(base))
        for index, option in enumerate(options):
            if option.failure is not None:
                raise _again(option.failure)
            if bucket < option.total:
                value = option.value.get()
                if self.log is not None:
                    self.note(
                        f"User.{name} is in bucket {bucket}: percentage option {index + 1}"
                        f" ({option.percent}%) serves {value!r}"
                    )
                match = PercentageMatch(index, option.percent, name, bucket)
                return value, _variation(option.variation, default_variation_id), match
        if self.log is not None:
            self.note(f"User.{name} is in bucket {bucket}, past every percentage option")
        return None

    def prerequisite(self, key: str, other: str) -> Any:
        """The value of flag `other`, which a condition of flag `key` depends on."""
        visited = self.visited
        visited.append(key)
        if other in visited:
            cycle = " -> ".join(f"'{k}'" for k in [*visited, other])
            raise EvaluationError(f"circular dependency between the flags {cycle}")
        value = self.setting(other, None)[0]
        visited.pop()
        return value


def _variation(given: Any, default: str | None) -> str | None:
    return default if given is _ABSENT else given


def _value_type(holder: Mapping[str, Any]) -> type | None:
    given = holder.get("v")
    if given is not None:
        for name, kind in _VALUE_KEYS.values():
            if given.get(name) is not None:
                return kind
    return None


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"'{v}'" for v in value) + "]"
    return f"'{value}'"


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _again(exc: Exception) -> Exception:
    """A fresh copy of a stored error (raising the same object again grows its traceback)."""
    try:
        return type(exc)(*exc.args)
    except Exception:
        return EvaluationError(_message(exc))


def _raising(exc: Exception) -> Callable[[Any], bool]:
    def test(actual: Any) -> bool:
        raise _again(exc)

    return test


def _failing(exc: Exception) -> _Check:
    def check(run: _Run) -> tuple[bool, str | None]:
        raise _again(exc)

    return check
