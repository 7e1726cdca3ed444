"""FQL tokens to an AST of frozen dataclasses; `str(node)` prints a node back as FQL.

Grammar (`or` binds looser than `and`, `!` binds tightest):

    expression := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "!" unary | primary
    primary    := "(" or_expr ")" | call | condition
    call       := ("contains" | "match") "(" path "," string ")"
    condition  := path operator value | path "in" "[" value ("," value)* "]"
    value      := string | number | "true" | "false" | "null"

Printing then parsing a node gives an equal node.
"""

from dataclasses import dataclass
from typing import Literal, cast

import msgspec

from trackway.fql.lexer import FQLError, Kind, Token, as_text, is_name_char, number, tokenize
from trackway.spec.message import Message

Value = str | int | float | bool | None
Path = tuple[str, ...]
Operator = Literal["=", "!=", "<", "<=", ">", ">="]
Function = Literal["contains", "match"]

# A path starts with a field of the stored event (`properties`, `userId`...): a typo in
# the first name is then an error when the expression is applied, not a silent no-match.
FIELDS = tuple(field.encode_name for field in msgspec.structs.fields(Message))
MAX_DEPTH = 100  # levels of `!` and parentheses
_ORDERING = ("<", "<=", ">", ">=")
_FUNCTIONS = ("contains", "match")
_KEYWORDS = ("and", "or", "in", "true", "false", "null")
# Fields that are always text: Segment compares them with the text of an unquoted
# number, and (but for userId) of a boolean, so `userId = 123` is `userId = "123"`.
TEXT_FIELDS = ("type", "event", "name", "userId")
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class Compare:
    """`path <operator> value`; `= null` / `!= null` test whether the field is absent."""

    path: Path
    operator: Operator
    value: Value

    def __str__(self) -> str:
        return f"{_path(self.path)} {self.operator} {_value(self.value)}"


@dataclass(frozen=True, slots=True)
class In:
    """`path in [values]`: the field equals one of the values."""

    path: Path
    values: tuple[Value, ...]

    def __str__(self) -> str:
        return f"{_path(self.path)} in [{', '.join(map(_value, self.values))}]"


@dataclass(frozen=True, slots=True)
class Call:
    """`contains(path, "text")` or `match(path, "glob*")`."""

    function: Function
    path: Path
    argument: str

    def __str__(self) -> str:
        return f"{self.function}({_path(self.path)}, {_value(self.argument)})"


@dataclass(frozen=True, slots=True)
class Not:
    """`!operand`."""

    operand: "Node"

    def __str__(self) -> str:
        if isinstance(self.operand, Call | Not):
            return f"!{self.operand}"
        return f"!({self.operand})"


@dataclass(frozen=True, slots=True)
class And:
    """Two or more operands joined by `and`."""

    operands: tuple["Node", ...]

    def __str__(self) -> str:
        return " and ".join(f"({o})" if isinstance(o, And | Or) else str(o) for o in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    """Two or more operands joined by `or`."""

    operands: tuple["Node", ...]

    def __str__(self) -> str:
        # `and` needs no parentheses inside `or`, but reads more clearly with them
        return " or ".join(f"({o})" if isinstance(o, And | Or) else str(o) for o in self.operands)


Node = Compare | In | Call | Not | And | Or


def parse(text: str) -> Node:
    """Parse an FQL expression; raises FQLError with the position of the first problem."""
    return _Parser(text).expression()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def at(self, kind: Kind) -> bool:
        return self.token.kind is kind

    def advance(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def error(self, message: str, token: Token | None = None) -> FQLError:
        return FQLError(message, (token or self.token).position, self.text)

    def expected(self, what: str) -> FQLError:
        found = self.token.kind.value if not self.token.text else repr(self.token.text)
        return self.error(f"expected {what}, found {found}")

    def accept(self, kind: Kind) -> bool:
        if self.at(kind):
            self.index += 1
            return True
        return False

    def keyword(self, word: str) -> bool:
        if self.at(Kind.IDENT) and self.token.text == word:
            self.index += 1
            return True
        return False

    def expect(self, kind: Kind) -> Token:
        if self.token.kind is not kind:
            raise self.expected(kind.value)
        return self.advance()

    def expression(self) -> Node:
        if self.at(Kind.END):
            raise self.error("empty expression")
        node = self.or_expr()
        if not self.at(Kind.END):
            raise self.expected("'and', 'or' or the end of the expression")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.keyword("or"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.unary()]
        while self.keyword("and"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Node:
        if not (self.at(Kind.NOT) or self.at(Kind.LPAREN)):
            if self.token.text in _FUNCTIONS and self.tokens[self.index + 1].kind is Kind.LPAREN:
                return self.call()
            return self.condition()
        # A limit, so that a silly expression fails cleanly rather than with a
        # RecursionError. "!(" counts once, as it does in the printed form of Not.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression nests more than {MAX_DEPTH} levels deep")
        if self.advance().kind is Kind.NOT:
            node: Node = Not(self.group() if self.accept(Kind.LPAREN) else self.unary())
        else:
            node = self.group()
        self.depth -= 1
        return node

    def group(self) -> Node:
        node = self.or_expr()
        if not self.accept(Kind.RPAREN):
            raise self.expected("'and', 'or' or ')'")
        return node

    def call(self) -> Call:
        function: Function = "contains" if self.advance().text == "contains" else "match"
        self.advance()  # "(", checked by the caller
        path = self.path()
        self.expect(Kind.COMMA)
        if not self.at(Kind.STRING):
            raise self.expected(f"a string as the second argument of {function}()")
        argument = str(self.advance().value)
        self.expect(Kind.RPAREN)
        return Call(function, path, argument)

    def condition(self) -> Compare | In:
        path = self.path()
        if self.keyword("in"):
            return In(path, tuple(_as_compared(path, v) for v in self.value_list()))
        if not self.at(Kind.OPERATOR):
            raise self.expected("an operator (=, !=, <, <=, >, >=) or 'in'")
        operator_token = self.advance()
        operator = cast(Operator, operator_token.text)
        value_token = self.token
        value = self.value(f"a value after '{operator}'")
        if operator in _ORDERING and not _is_number(value):
            raise self.error(
                f"'{operator}' compares numbers; {value_token.text} is not a number", value_token
            )
        if operator in ("=", "!="):
            value = _as_compared(path, value)
        return Compare(path, operator, value)

    def path(self) -> Path:
        token = self.token
        if token.kind is not Kind.IDENT or token.text in _KEYWORDS:
            raise self.expected("a field name")
        self.advance()
        assert isinstance(token.value, tuple)
        if token.value[0] not in FIELDS:
            raise self.error(
                f"unknown field {token.value[0]!r}; a field path starts with one of "
                + ", ".join(FIELDS),
                token,
            )
        return token.value

    def value_list(self) -> tuple[Value, ...]:
        self.expect(Kind.LBRACKET)
        values = [self.value("a value in the list")]
        while self.accept(Kind.COMMA):
            values.append(self.value("a value in the list"))
        if not self.accept(Kind.RBRACKET):
            raise self.expected("',' or ']'")
        return tuple(values)

    def value(self, what: str) -> Value:
        token = self.token
        if token.kind in (Kind.STRING, Kind.NUMBER):
            self.advance()
            assert not isinstance(token.value, tuple)
            return token.value
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.keyword(word):
                return value
        raise self.expected(what)


def _as_compared(path: Path, value: Value) -> Value:
    """The value `=`, `!=` and `in` compare the field with (see TEXT_FIELDS)."""
    if len(path) != 1 or path[0] not in TEXT_FIELDS or value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) and path[0] == "userId":
        return value
    return as_text(value)


def _is_number(value: Value) -> bool:
    """A number, or a string that reads as one (Segment accepts `price > "10"`)."""
    if isinstance(value, str):
        return number(value) is not None
    return isinstance(value, int | float) and not isinstance(value, bool)


def _path(path: Path) -> str:
    return ".".join("".join(c if is_name_char(c) else "\\" + c for c in name) for name in path)


def _value(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + "".join(_STRING_ESCAPES.get(char, char) for char in value) + '"'
