"""Checking an insert function's code without running it.

The server never executes a function's code (only its workers do): the check compiles
it and looks at its syntax tree for a top-level `def transform(event, settings)`.
"""

import ast
from types import CodeType

FILENAME = "<function>"
ENTRY = "transform"


class FunctionError(ValueError):
    """Code that cannot be used as an insert function; the message names the line."""


def check_code(code: str) -> None:
    """Raise FunctionError unless `code` compiles and defines `transform(event, settings)`."""
    compile_code(code)


def compile_code(code: str) -> CodeType:
    """The checked code, compiled; raises FunctionError."""
    try:
        tree = ast.parse(code, FILENAME)
        compiled = compile(tree, FILENAME, "exec")
    except SyntaxError as exc:
        raise FunctionError(f"line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # source with NUL bytes
        raise FunctionError(str(exc)) from None
    defs = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ENTRY
    ]
    if not defs:
        raise FunctionError(f"the code must define a function {ENTRY}(event, settings)")
    node = defs[-1]
    if isinstance(node, ast.AsyncFunctionDef):
        raise FunctionError(f"line {node.lineno}: {ENTRY} must be a plain def, not async def")
    if not _takes_two_positional(node.args):
        raise FunctionError(
            f"line {node.lineno}: {ENTRY} must take two arguments: {ENTRY}(event, settings)"
        )
    return compiled


def _takes_two_positional(args: ast.arguments) -> bool:
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    kw_required = any(default is None for default in args.kw_defaults)
    return required <= 2 and (positional >= 2 or args.vararg is not None) and not kw_required
