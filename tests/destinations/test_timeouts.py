"""A destination that hangs past the delivery timeout: the attempt fails as a timeout
and is retried; when the server answers again the event is delivered."""

from pathlib import Path

from tests.destinations.fake_server import HANG, FakeServer
from tests.destinations.support import Workspace, received_ids, track, webhook
from tests.support import until


def test_a_hang_past_the_timeout_is_retried_then_delivered(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    try:
        with FakeServer() as sink:
            sink.reply(HANG)
            workspace.apply(webhook("hook", sink.url, delivery={"timeout": "0.5s"}))
            deliveries = workspace.start()
            event = track()
            workspace.send(event)
            assert until(lambda: workspace.counts("hook").delivered, 1, seconds=30) == 1
            assert received_ids(sink.requests) == [event["messageId"]] * 2
            counts = workspace.counts("hook")
            assert (counts.retried, counts.discarded, counts.dead_lettered) == (1, 0, 0)
            (error,) = deliveries.delivery_store.errors("hook", 10)
            assert error.kind == "timeout" and error.response is None
            assert error.request is not None and error.request["url"] == sink.url
    finally:
        workspace.close()
