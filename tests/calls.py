"""A gRPC call whose request body is held back until the server has answered: only a server
that decides on the metadata alone (and what it knows already) answers at all; one that reads
the body first waits for it until the deadline."""

import threading
from collections.abc import Iterator

import grpc
import pytest


def answer_before_the_body(address: str, method: str, *, streamed: bool = False,
                           metadata: tuple = (), deadline: float = 20.0) -> grpc.StatusCode:
    """The status of a call to `method` whose body is never sent before the answer
    (`streamed`: the method answers with a stream)."""
    answered = threading.Event()

    def body() -> Iterator[bytes]:
        answered.wait(3 * deadline)
        yield b""

    with grpc.insecure_channel(address) as channel:
        if streamed:
            def call(requests: Iterator[bytes], **options: object) -> list:
                return list(channel.stream_stream(method)(requests, **options))
        else:
            call = channel.stream_unary(method)
        try:
            with pytest.raises(grpc.RpcError) as raised:
                call(body(), timeout=deadline, metadata=metadata)
        finally:
            answered.set()
    return raised.value.code()
