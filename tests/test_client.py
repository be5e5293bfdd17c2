"""The Python client's retry pauses: callers refused together must not come back together."""

import pytest

from client.patron_client import backoff


def test_retries_wait_about_the_doubling_pause_each_spread_over_half_to_one_and_a_half_of_it():
    for attempt, mean in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (9, 2.0)):
        pauses = [backoff(attempt) for _ in range(400)]
        assert all(0.5 * mean <= pause <= 1.5 * mean for pause in pauses)
        assert min(pauses) < 0.6 * mean  # spread, not one instant
        assert max(pauses) > 1.4 * mean
        assert 0.9 * mean < sum(pauses) / len(pauses) < 1.1 * mean


def test_a_refusal_that_says_when_room_is_likely_is_retried_no_sooner_than_half_of_that():
    """A real gRPC server refusing with the overload hint patron's gateway sends (700 ms): the
    client's pause honours it, still spread over half to one and a half of it."""
    from concurrent import futures

    import grpc

    from client.patron_client import RETRY_AFTER, retry_after

    def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata(((RETRY_AFTER, "700"),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "full")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.Full", {"Submit": grpc.unary_unary_rpc_method_handler(refuse)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary("/t.Full/Submit")(b"", timeout=10)
    finally:
        server.stop(None)
    error = refused.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_after(error) == 0.7
    pauses = [backoff(1, error) for _ in range(400)]
    assert all(0.35 <= pause <= 1.05 for pause in pauses)
    assert min(pauses) < 0.42
    assert max(pauses) > 0.98
    assert retry_after(grpc.StatusCode.RESOURCE_EXHAUSTED) == 0.0  # no metadata: the doubling pause alone


def test_a_subscription_that_breaks_moves_the_client_on_only_from_the_gateway_it_was_opened_on():
    import grpc

    from client.patron_client import PatronClient

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    with PatronClient(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]) as client:
        client._use(0)
        opened_on_first = client._fail_over_from(0)
        client._use(1)  # another call moved on since (a reviewer: the stream's break moved it again)
        opened_on_first(Unavailable())
        assert client.address == "127.0.0.1:2"
        client._fail_over_from(1)(Unavailable())
        assert client.address == "127.0.0.1:3"


def test_a_message_over_a_size_limit_is_not_retried_whichever_side_refused_it():
    import grpc

    from client.patron_client import retriable

    class Refused(grpc.RpcError):
        def __init__(self, details: str) -> None:
            self._details = details

        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.RESOURCE_EXHAUSTED

        def details(self) -> str:
            return self._details

    assert retriable(Refused("the shard's queue is full"))
    for details in ("CLIENT: Sent message larger than max (67108903 vs. 67108864)",
                    "SERVER: Received message larger than max (70000000 vs. 67108864)",
                    "Stream removed (CLIENT: Received message larger than max (5000111 vs. 4194304))"):
        assert not retriable(Refused(details)), details
