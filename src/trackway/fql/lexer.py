"""FQL text to tokens, and the error every stage of FQL compilation raises."""

import enum
import math
import re
from dataclasses import dataclass
from typing import Any

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")  # two-character operators first
_STRING_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}


class FQLError(ValueError):
    """An FQL expression that does not compile: what is wrong and where.

    `position` is the 0-based offset of the problem in `text` (the column, for the usual
    one-line expression); `str()` shows the message with the text and a caret under it.
    """

    def __init__(self, message: str, position: int, text: str | None = None) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position
        self.text = text

    def __str__(self) -> str:
        if self.text is None:
            return f"{self.message} (column {self.position})"
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start : end if end != -1 else len(self.text)]
        column = self.position - start
        where = f"column {column}"
        if "\n" in self.text:
            line_number = self.text.count("\n", 0, self.position) + 1
            where = f"line {line_number}, {where}"
        return f"{self.message} at {where}\n  {line}\n  {' ' * column}^"


class Kind(enum.Enum):
    """What a token is."""

    IDENT = "a field name or keyword"
    STRING = "a string"
    NUMBER = "a number"
    OPERATOR = "an operator"
    NOT = "'!'"
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    COMMA = "','"
    END = "the end of the expression"


_PUNCTUATION = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    ",": Kind.COMMA,
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: `text` is the source slice; `value` the decoded string, number or path."""

    kind: Kind
    text: str
    position: int
    value: str | int | float | tuple[str, ...] = ""


def is_name_char(char: str) -> bool:
    """Whether `char` may appear unescaped in a field name (others need a backslash)."""
    return char.isalnum() or char in "_$"


def number(text: str) -> int | float | None:
    """The number `text` spells in FQL (JSON) syntax, or None; FQL and the evaluator agree
    on what a number is through this one function."""
    found = _NUMBER.fullmatch(text)
    if not found:
        return None
    try:
        value = float(text) if found.group(1) or found.group(2) else int(text)
    except ValueError:  # more digits than int() converts: too large anyway
        return None
    return value if math.isfinite(value) else None


def as_text(value: Any) -> str:
    """A scalar as text, the way JavaScript's String() writes it (`true`, `10`, `1.5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def tokenize(text: str) -> list[Token]:
    """Split an FQL expression into tokens, ending with an END token."""
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            tokens.append(Token(Kind.END, "", pos))
            return tokens
        token = _next_token(text, pos)
        tokens.append(token)
        pos += len(token.text)


def _next_token(text: str, pos: int) -> Token:
    char = text[pos]
    if char == '"':
        return _string(text, pos)
    if char.isascii() and (char.isdigit() or char == "-"):
        return _number(text, pos)
    if char.isalpha() or char in "_$\\":
        return _path(text, pos)
    for operator in _OPERATORS:
        if text.startswith(operator, pos):
            return Token(Kind.OPERATOR, operator, pos, operator)
    if char == "!":
        return Token(Kind.NOT, char, pos)
    if char in _PUNCTUATION:
        return Token(_PUNCTUATION[char], char, pos)
    raise FQLError(f"unexpected character {char!r}", pos, text)


def _string(text: str, start: int) -> Token:
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return Token(Kind.STRING, text[start : pos + 1], start, "".join(chars))
        if char != "\\":
            chars.append(char)
            pos += 1
            continue
        escape = text[pos + 1 : pos + 2]
        if escape in _STRING_ESCAPES:
            chars.append(_STRING_ESCAPES[escape])
            pos += 2
        elif escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[pos + 2 : pos + 6]):
            chars.append(chr(int(text[pos + 2 : pos + 6], 16)))
            pos += 6
        else:
            raise FQLError("invalid escape in string", pos, text)
    raise FQLError("unterminated string", start, text)


def _number(text: str, start: int) -> Token:
    found = _NUMBER.match(text, start)
    end = found.end() if found else start
    # "12abc" or "1.": a number must end where a name or a dot could not continue it
    if not found or (end < len(text) and (is_name_char(text[end]) or text[end] in ".\\")):
        raise FQLError("invalid number", start, text)
    value = number(found.group())
    if value is None:
        raise FQLError("number out of range", start, text)
    return Token(Kind.NUMBER, found.group(), start, value)


def _path(text: str, start: int) -> Token:
    """A dotted field path; a backslash makes the next character part of the name."""
    segments: list[str] = []
    current: list[str] = []
    pos = start
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 == len(text):
                raise FQLError("a backslash must be followed by a character", pos, text)
            current.append(text[pos + 1])
            pos += 2
        elif is_name_char(char):
            current.append(char)
            pos += 1
        elif char == ".":
            if not current:
                raise FQLError("empty name in field path", pos, text)
            segments.append("".join(current))
            current = []
            pos += 1
        else:
            break
    if not current:
        raise FQLError("empty name in field path", pos, text)
    segments.append("".join(current))
    return Token(Kind.IDENT, text[start:pos], start, tuple(segments))
