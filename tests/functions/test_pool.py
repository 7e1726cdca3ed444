"""FunctionPool.run: what a function's return values and exceptions become."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.functions.conftest import function, worker_processes
from trackway.functions import Failure, FunctionPool, Outcome

TRACK: dict[str, Any] = {"type": "track", "event": "Signed Up", "properties": {"plan": "pro"}}

NOT_JSON = "transform returned a value that is not JSON: "


def failure(outcome: Outcome) -> Failure:
    assert outcome.failure is not None, outcome
    assert outcome.events == []
    return outcome.failure


def test_changes_the_event(pool: FunctionPool) -> None:
    code = function("""
        event["properties"]["plan"] = event["properties"]["plan"].upper()
        event["properties"]["region"] = settings["region"]
        return event
    """)
    [outcome] = pool.run(code, [TRACK], {"region": "eu"})
    assert outcome.ok
    assert outcome.events == [
        {"type": "track", "event": "Signed Up", "properties": {"plan": "PRO", "region": "eu"}}
    ]


def test_one_outcome_per_event_in_order(pool: FunctionPool) -> None:
    code = function('return {"n": event["n"] * 2}')
    outcomes = pool.run(code, [{"n": n} for n in range(100)], {})
    assert [o.events for o in outcomes] == [[{"n": n * 2}] for n in range(100)]
    assert pool.run(code, [], {}) == []


def test_none_drops_the_event(pool: FunctionPool) -> None:
    [outcome] = pool.run(function("return None"), [TRACK], {})
    assert outcome == Outcome(events=[], failure=None)
    assert outcome.ok


def test_a_list_fans_out(pool: FunctionPool) -> None:
    code = function("""
        return [dict(event, event=name) for name in ("A", "B")] if event["n"] else []
    """)
    first, second = pool.run(code, [{"n": 1}, {"n": 0}], {})
    assert first.events == [{"n": 1, "event": "A"}, {"n": 1, "event": "B"}]
    assert second == Outcome(events=[])


def test_an_exception_fails_the_event_with_its_message_and_line(pool: FunctionPool) -> None:
    code = function("""
        total = event["total"]
        return {"share": 1 / total}
    """)
    good, bad = pool.run(code, [{"total": 4}, {"total": 0}], {})
    assert good.events == [{"share": 0.25}]
    assert failure(bad) == Failure(
        "exception", "ZeroDivisionError: division by zero (line 5 in transform)", retry=False
    )


def test_the_line_is_the_innermost_in_the_functions_code(pool: FunctionPool) -> None:
    code = (
        "def check(event):\n    raise KeyError('userId')\n\n"
        "def transform(event, settings):\n    check(event)\n"
    )
    [outcome] = pool.run(code, [TRACK], {})
    assert failure(outcome).message == "KeyError: 'userId' (line 2 in check)"


def test_an_exception_whose_message_cannot_be_read(pool: FunctionPool) -> None:
    code = "class Odd(Exception):\n    def __str__(self):\n        return 1 / 0\n\n" + function(
        "raise Odd()"
    )
    [outcome] = pool.run(code, [TRACK], {})
    assert failure(outcome).message == "Odd: (its message could not be read) (line 8 in transform)"


def test_retry_error_asks_for_a_retry(pool: FunctionPool) -> None:
    [outcome] = pool.run(function('raise RetryError("rate limited")'), [TRACK], {})
    assert failure(outcome) == Failure(
        "exception", "RetryError: rate limited (line 4 in transform)", retry=True
    )


@pytest.mark.parametrize("error", ["ValidationError", "EventNotSupported"])
def test_validation_errors_discard_the_event(pool: FunctionPool, error: str) -> None:
    [outcome] = pool.run(function(f'raise {error}("no email")'), [TRACK], {})
    assert failure(outcome) == Failure(
        "exception", f"{error}: no email (line 4 in transform)", retry=False
    )


def test_drop_event_drops_silently(pool: FunctionPool) -> None:
    code = function("""
        if event["n"] % 2:
            raise DropEvent()
        return event
    """)
    outcomes = pool.run(code, [{"n": 1}, {"n": 2}], {})
    assert outcomes == [Outcome(events=[]), Outcome(events=[{"n": 2}])]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 42", "transform must return an event (dict), a list of events or None, not int"),
        (
            'return "event"',
            "transform must return an event (dict), a list of events or None, not str",
        ),
        (
            "return [event, None]",
            "item 1 of the list transform returned is NoneType, not an event (dict)",
        ),
        (
            "return (event,)",
            "transform must return an event (dict), a list of events or None, not tuple",
        ),
        (
            'return {"when": object()}',
            NOT_JSON + "Encoding objects of type object is unsupported",
        ),
        (
            'return {(1, 2): "tuple key"}',
            NOT_JSON + "Only dicts with str-like or number-like keys are supported",
        ),
    ],
)
def test_invalid_results(pool: FunctionPool, body: str, message: str) -> None:
    [outcome] = pool.run(function(body), [TRACK], {})
    assert failure(outcome) == Failure("invalid_result", message, retry=False)


def test_code_that_does_not_load_fails_every_event(pool: FunctionPool) -> None:
    broken = "def transform(event):\n    return event\n"
    raises = "import os\nlimit = 1 / 0\n\ndef transform(event, settings):\n    return event\n"
    assert [failure(o) for o in pool.run(broken, [TRACK, TRACK], {})] == 2 * [
        Failure(
            "exception", "line 1: transform must take two arguments: transform(event, settings)"
        )
    ]
    assert [failure(o) for o in pool.run(raises, [TRACK, TRACK], {})] == 2 * [
        Failure("exception", "ZeroDivisionError: division by zero (line 2 in <module>)")
    ]


def test_print_does_not_disturb_the_replies(pool: FunctionPool) -> None:
    code = function("""
        print("debugging", event)
        os.write(1, b"raw bytes on fd 1")
        return event
    """)
    assert pool.run(code, [TRACK], {}) == [Outcome(events=[TRACK])]


def test_module_state_is_kept_between_calls_of_the_same_code(single: FunctionPool) -> None:
    code = "seen = []\n\n" + function("""
        seen.append(1)
        return {"seen": len(seen)}
    """)
    assert single.run(code, [{}, {}], {})[1].events == [{"seen": 2}]
    assert single.run(code, [{}], {})[0].events == [{"seen": 3}]


def test_concurrent_callers_get_their_own_results(pool: FunctionPool) -> None:
    code = function("""
        return dict(event, caller=settings["caller"], doubled=event["n"] * 2)
    """)
    start = threading.Barrier(8)

    def caller(number: int) -> list[list[Outcome]]:
        start.wait()
        return [
            pool.run(code, [{"n": number * 1000 + i} for i in range(20)], {"caller": number})
            for _ in range(5)
        ]

    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(caller, range(8)))
    for number, runs in enumerate(results):
        for outcomes in runs:
            assert [o.events for o in outcomes] == [
                [{"n": number * 1000 + i, "caller": number, "doubled": (number * 1000 + i) * 2}]
                for i in range(20)
            ]


def test_run_after_close_raises(single: FunctionPool) -> None:
    others = set(worker_processes(os.getpid()))  # the module's pool's
    single.run(function("return event"), [TRACK], {})
    (pid,) = set(worker_processes(os.getpid())) - others
    single.close()
    with pytest.raises(RuntimeError, match="closed"):
        single.run(function("return event"), [TRACK], {})
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_rejects_limits_that_are_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FunctionPool(workers=0)
