"""ConfigCat's config_v6 comparators: the names the YAML uses, their numbers and value kinds."""

from typing import Literal

ValueKind = Literal["l", "s", "d"]
"""The comparison value's key in config_v6: `l` list of text, `s` text, `d` number."""

COMPARATORS: dict[str, tuple[int, ValueKind]] = {
    "is one of": (0, "l"),
    "is not one of": (1, "l"),
    "contains any of": (2, "l"),
    "not contains any of": (3, "l"),
    "semver is one of": (4, "l"),
    "semver is not one of": (5, "l"),
    "semver <": (6, "s"),
    "semver <=": (7, "s"),
    "semver >": (8, "s"),
    "semver >=": (9, "s"),
    "number =": (10, "d"),
    "number !=": (11, "d"),
    "number <": (12, "d"),
    "number <=": (13, "d"),
    "number >": (14, "d"),
    "number >=": (15, "d"),
    "sensitive is one of": (16, "l"),
    "sensitive is not one of": (17, "l"),
    "date before": (18, "d"),
    "date after": (19, "d"),
    "sensitive equals": (20, "s"),
    "sensitive not equals": (21, "s"),
    "sensitive starts with any of": (22, "l"),
    "sensitive not starts with any of": (23, "l"),
    "sensitive ends with any of": (24, "l"),
    "sensitive not ends with any of": (25, "l"),
    "sensitive array contains any of": (26, "l"),
    "sensitive array not contains any of": (27, "l"),
    "equals": (28, "s"),
    "not equals": (29, "s"),
    "starts with any of": (30, "l"),
    "not starts with any of": (31, "l"),
    "ends with any of": (32, "l"),
    "not ends with any of": (33, "l"),
    "array contains any of": (34, "l"),
    "array not contains any of": (35, "l"),
}

PREFIX_HASHED = frozenset({22, 23, 24, 25})
"""Hashed "starts/ends with": each item is `<byte length>_<hash>`."""

HASHED = frozenset({16, 17, 20, 21, 26, 27}) | PREFIX_HASHED
