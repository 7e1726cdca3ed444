"""Sessions expire and end at sign-out; wrong tokens are counted per client."""

from trackway.dashboard.sessions import Sessions, SignInLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires_after_its_lifetime() -> None:
    clock = Clock()
    sessions = Sessions(ttl_s=60, clock=clock)
    session = sessions.create()
    clock.now += 59
    assert sessions.get(session.id) == session
    clock.now += 1
    assert sessions.get(session.id) is None


def test_sign_out_ends_a_session_and_ids_are_unguessable() -> None:
    sessions = Sessions()
    a, b = sessions.create(), sessions.create()
    assert a.id != b.id and a.csrf != b.csrf and len(a.id) >= 40
    sessions.end(a.id)
    assert sessions.get(a.id) is None
    assert sessions.get(b.id) == b
    assert sessions.get(None) is None and sessions.get("") is None


def test_too_many_failures_make_a_client_wait_until_the_window_passes() -> None:
    clock = Clock()
    limiter = SignInLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
        clock.now += 1
    assert limiter.retry_after("a") == 57  # the first failure leaves the window then
    assert limiter.retry_after("b") is None  # per client
    clock.now += 57
    assert limiter.retry_after("a") is None


def test_a_success_forgets_the_failures() -> None:
    limiter = SignInLimiter(max_failures=2, window_s=60)
    limiter.failed("a")
    limiter.succeeded("a")
    limiter.failed("a")
    assert limiter.retry_after("a") is None
