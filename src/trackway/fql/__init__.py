"""FQL, the expression language of subscriptions and destination filters.

`compile(text)` parses an expression once (raising FQLError, with the position, when it
is not valid); the Expression it returns then tests any number of events.
"""

from trackway.fql.evaluate import EvaluationError, Expression
from trackway.fql.lexer import FQLError
from trackway.fql.parser import parse

__all__ = ["EvaluationError", "Expression", "FQLError", "compile"]


def compile(text: str) -> Expression:
    """Compile an FQL expression; raises FQLError when it does not parse."""
    return Expression(parse(text))
