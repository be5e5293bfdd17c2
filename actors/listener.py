"""A gateway's gRPC server, as both kinds of gateway build it: `patron serve`'s own and a node
gateway (actors/node_gateway.py): tokens, the start-up guard, the services, health and reflection."""

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from actors.auth import BearerTokens, refusal, server_credentials
from actors.config import ServeConfig
from actors.gateway import grpc_own_handler, handler_for
from engine.errors import PatronError
from proto import patron_pb2 as pb

__all__ = ["SERVICE_NAMES", "CallsInFlight", "UntilStarted", "grpc_server", "listen", "refuse_ports_in_use",
           "stop_server"]

WINDOWS = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16 << 10)]
"""What a client may send of a call before its handler asks for the body: 16 KB. With gRPC's
default (windows grown by bandwidth-delay probing) every call's whole body came at once, so a
batch refused on its metadata had already cost its 260 KB on both sides, and under overload
new calls' headers queued behind megabytes of refused bodies in the sockets. A handler that
reads is granted the whole message at once (one round trip more for bodies over 16 KB)."""
NO_SHARED_PORT = ("grpc.so_reuseport", 0)
"""gRPC opens its port with SO_REUSEPORT on Linux: a second server started on a port in use then
shares it, and the kernel splits the tills' calls between two data folders."""

PINGS = ("grpc.http2.min_ping_interval_without_data_ms", 4_000)
"""Keepalive pings taken every 4 s at most on a connection that carries no data: with gRPC's
default (5 minutes; windows without bandwidth probes, as WINDOWS sets) a quiet subscription whose
client pings every 20 s, as PatronClient's does (5 s at least), was cut off "too_many_pings"
after its third ping. The pings are what ends a subscription over a connection that died."""


def server_options(limit: int) -> list[tuple[str, int]]:
    """What every gateway's gRPC server is given (`limit`: the largest request's bytes)."""
    return [("grpc.max_receive_message_length", limit + (1 << 20)), ("grpc.max_send_message_length", limit),
            *WINDOWS, NO_SHARED_PORT, PINGS]


SERVICE_NAMES = tuple(pb.DESCRIPTOR.services_by_name[name].full_name
                      for name in ("Ingest", "Members", "Admin", "Events", "Wallet"))


class CallsInFlight:
    """The calls being answered, event subscriptions aside: a stop waits for these (batches being
    committed), not for a subscriber that stopped reading, whose stream gRPC's grace waited out
    (30 s at every SIGTERM: an outside probe). Counted in each handler, not per call by an
    interceptor: nothing is made per call. A handler that streams its answers is an async
    generator (patron's all are)."""

    def __init__(self) -> None:
        self.count = 0

    def counted(self, handler: Any) -> Any:
        """`handler` (a grpc.*_rpc_method_handler, a named tuple) with its calls counted."""
        shape = ("stream" if handler.request_streaming else "unary") + "_" + (
            "stream" if handler.response_streaming else "unary")
        behaviour = getattr(handler, shape)

        async def answered(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.count += 1
            try:
                return await behaviour(request, context)
            finally:
                self.count -= 1

        async def streamed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.count += 1
            try:  # closed at once when the call is cancelled, not when it is collected
                async with contextlib.aclosing(behaviour(request, context)) as messages:
                    async for message in messages:
                        yield message
            finally:
                self.count -= 1

        return handler._replace(**{shape: streamed if handler.response_streaming else answered})

    async def finished(self, seconds: float) -> None:
        """Once none is in flight, or after `seconds`."""
        deadline = time.monotonic() + seconds
        while self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


FLUSH_SECONDS = 1.0
"""gRPC's own grace, once the counted calls have ended: for their answers to leave, and for a
call let in meanwhile to be answered."""


async def stop_server(server: grpc.aio.Server, calls: CallsInFlight, grace: float) -> None:
    """Answer the calls in flight (up to `grace` seconds; health is NOT_SERVING and new batches
    are refused by then), then stop gRPC with FLUSH_SECONDS of grace, after which what is left is
    cut: event subscriptions, which end at their next turn (EventFeed.stop_streams) unless their
    reader stopped reading. gRPC's stop is called once: a second call while the first was still
    stopping crashed the process when both cancelled (grpc.aio frees the server once stopped)."""
    await calls.finished(grace)
    await server.stop(min(FLUSH_SECONDS, grace))


def grpc_server(config: ServeConfig, tokens: dict[str, str], servicers: dict[str, object],
                checker: health.aio.HealthServicer, started: Callable[[], bool],
                calls: CallsInFlight | None = None, extra: tuple[grpc.GenericRpcHandler, ...] = ()) -> grpc.aio.Server:
    """`servicers` by service name (Ingest, Members...); `extra` handlers serve the rest. The calls
    of every service but Events are counted in `calls`."""
    limit = config.max_message_bytes
    interceptors = [BearerTokens(tokens)] if tokens else []
    interceptors.append(UntilStarted(started))
    server = grpc.aio.server(interceptors=interceptors, options=server_options(limit))
    services = pb.DESCRIPTOR.services_by_name
    for name, servicer in servicers.items():
        server.add_generic_rpc_handlers((handler_for(services[name], servicer, limit,
                                                     calls.counted if calls and name != "Events" else None),))
    if extra:
        server.add_generic_rpc_handlers(extra)
    names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
    server.add_generic_rpc_handlers((
        grpc_own_handler(health_pb2.DESCRIPTOR.services_by_name["Health"], checker, health_pb2, limit),
        grpc_own_handler(reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
                         reflection.aio.ReflectionServicer(names), reflection_pb2, limit)))
    return server


def listen(server: grpc.aio.Server, config: ServeConfig, host: str) -> int:
    """Open the port (TLS when configured); returns its number."""
    address = f"{host}:{config.grpc_port}"
    try:
        if config.tls_cert and config.tls_key:
            return server.add_secure_port(address, server_credentials(config.tls_cert, config.tls_key,
                                                                      config.tls_client_ca))
        return server.add_insecure_port(address)
    except RuntimeError as error:  # grpcio's only word for a port it could not open
        raise PatronError(f"--grpc-port {config.grpc_port}: cannot listen on {address} ({error}); "
                          f"is another server using it?") from None


def refuse_ports_in_use(config: ServeConfig) -> None:
    """Before anything starts (Ray, the data folder): a port another process listens on is said
    in one line naming its flag, rather than after Ray's start as a bare "Address already in use"."""
    for flag, port in (("--grpc-port", config.grpc_port), ("--metrics-port", config.metrics_port)):
        if port > 0 and _in_use(config.host, port):
            raise PatronError(f"{flag} {port}: {config.host}:{port} is in use by another process "
                              f"(another patron serve?); stop it or choose another port")


def _in_use(host: str, port: int) -> bool:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        return False  # said by whatever opens it
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


class UntilStarted(grpc.aio.ServerInterceptor):
    """The port opens before the shards are up (so health can say NOT_SERVING); until they
    are, patron's own methods answer UNAVAILABLE, which clients retry, instead of failing on
    a coordinator that has no shards yet. Health and reflection answer all along."""

    def __init__(self, started: Callable[[], bool]) -> None:
        self.started = started

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or self.started() or not details.method.startswith(f"/{pb.DESCRIPTOR.package}."):
            return handler
        return refusal(handler, grpc.StatusCode.UNAVAILABLE,
                       "patron is starting and its shards are not ready yet; nothing was applied: "
                       "retry shortly (health turns SERVING when ready)")
