"""The gRPC gateway: Ingest, Members and Admin. It checks requests, routes them by member
and answers only what shards have committed. gRPC lives here and nowhere else."""

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import msgspec
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors.batch_order import BatchPart, Stream
from actors.batch_outcome import disk_full, failed_batch, original, root_cause, storage_full
from actors.batch_wire import PartAnswer, Route, ack_bytes, result_message, route_of
from actors.coordinator import Coordinator
from actors.job_errors import job_error
from actors.logs import Throttled
from actors.metrics import Metrics
from actors.opening_wire import encode_rows, request_rows
from actors.refusals_first import RefusalsFirst
from actors.routing import shards_of
from actors.rule_versions import RuleVersions
from actors.wire import anomaly_row, attributes_from, ledger_entry, member_message
from engine.calendar import iso, parse_day
from engine.errors import (
    CardStateError,
    CheckpointFailedError,
    InvalidRequestError,
    MovedAwayError,
    NotYetError,
    OutOfOrderError,
    OverloadedError,
    PatronError,
    PublishBusyError,
    PublishUnfinishedError,
    ReshardBusyError,
    RulesError,
    ShardUnavailableError,
    StorageFullError,
    UnknownMemberError,
)
from engine.ledger import LedgerEntry
from engine.operators import STATUS_ACTIONS, Enrollment
from proto import patron_pb2 as pb

__all__ = ["AdminService", "IngestService", "MembersService", "grpc_own_handler", "handler_for"]

log = logging.getLogger("patron.gateway")
_refusals = Throttled(log)

_encode = msgspec.msgpack.Encoder().encode
_decode_answer = msgspec.msgpack.Decoder(PartAnswer).decode
LEDGER_PAGE = 500
RETRY_AFTER = "patron-retry-after-ms"
"""Trailing metadata of an overload refusal: milliseconds until room is likely."""
_READS = frozenset({"member", "ledger_positions", "ledger_at"})


class Unreadable:
    """Stands in for request bytes that are not the expected message, or are too large."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def handler_for(service: ServiceDescriptor, servicer: object, max_bytes: int,
                wrap: Callable[[Any], Any] | None = None) -> grpc.GenericRpcHandler:
    """Like the generated add_*_to_server, but a request that cannot be read reaches the
    servicer as Unreadable, so it is answered INVALID_ARGUMENT instead of INTERNAL. A method the
    servicer names in READS_ITSELF gets its request as a stream, to refuse before reading it; one
    it names in RAW gets the request's bytes, to parse when and as it needs. A servicer may answer
    with the response's bytes. `wrap` is applied to each method's handler (actors/listener.py
    `CallsInFlight.counted`)."""
    factories = {(False, False): grpc.unary_unary_rpc_method_handler,
                 (False, True): grpc.unary_stream_rpc_method_handler,
                 (True, False): grpc.stream_unary_rpc_method_handler,
                 (True, True): grpc.stream_stream_rpc_method_handler}
    reads_itself = getattr(servicer, "READS_ITSELF", frozenset())
    raw = getattr(servicer, "RAW", frozenset())
    handlers = {}
    for method in service.methods:
        streamed = method.client_streaming or method.name in reads_itself
        factory = factories[(streamed, method.server_streaming)]
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=_lenient(None if method.name in raw else getattr(pb, method.input_type.name),
                                          max_bytes),
            response_serializer=_serialize)
        if wrap is not None:
            handlers[method.name] = wrap(handlers[method.name])
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def grpc_own_handler(service: ServiceDescriptor, servicer: object, messages: Any, max_bytes: int
                     ) -> grpc.GenericRpcHandler:
    """gRPC's own services (health, reflection; `messages` their generated module) as their
    add_*_to_server registers them, but a request that cannot be read is answered INVALID_ARGUMENT
    before their servicer sees it. Read as gRPC reads them, such bytes answered UNKNOWN and logged
    a traceback at error level each time, and neither service needs a token (an outside probe)."""
    handlers = {}
    for method in service.methods:
        call, parse = getattr(servicer, method.name), _lenient(getattr(messages, method.input_type.name), max_bytes)
        if method.client_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _each_readable(call), request_deserializer=parse, response_serializer=_serialize)
        else:
            factory = grpc.unary_stream_rpc_method_handler if method.server_streaming \
                else grpc.unary_unary_rpc_method_handler
            handlers[method.name] = factory(_readable(call), request_deserializer=parse, response_serializer=_serialize)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _readable(call: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    async def answer(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Unreadable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        try:
            return await call(request, context)
        except NotImplementedError:  # a method of the proto the servicer lacks (Health.List): logged as an error
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"patron does not implement {call.__name__}")
    return answer


def _each_readable(call: Callable[[Any, Any], Any]) -> Callable[[Any, Any], AsyncIterator]:
    async def answers(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
        async def readable() -> AsyncIterator:
            async for request in requests:
                if isinstance(request, Unreadable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
                yield request
        async for answer in call(readable(), context):
            yield answer
    return answers


def _lenient(message: Any, max_bytes: int) -> Callable[[bytes], Any]:
    """Parses into `message`; with None, only checks the size."""
    def parse(data: bytes) -> Any:
        if len(data) > max_bytes:
            return Unreadable(f"request of {len(data):,} bytes; the limit is {max_bytes:,}")
        if message is None:
            return data
        try:
            return message.FromString(data)
        except DecodeError as error:
            return Unreadable(f"not a {message.DESCRIPTOR.full_name}: {error}")
    return parse


def _serialize(response: Any) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _batch(data: bytes) -> Route:
    """What routing needs of a batch (actors/batch_wire.py `route_of`); a batch protobuf refuses
    is refused whole, before any part of it is sent."""
    try:
        return route_of(data)
    except DecodeError as error:
        raise InvalidRequestError(f"not a {pb.TransactionBatch.DESCRIPTOR.full_name}: {error}") from None


class StoppingError(PatronError):
    """A stream's batch arriving after the server began to stop: not applied."""

    def __init__(self) -> None:
        super().__init__("patron is stopping: this batch (and any sent after it on a stream) was not applied; "
                         "send it again (to another gateway, or here once it is back)")


_CODES: list[tuple[type[BaseException] | tuple, grpc.StatusCode]] = [
    (CardStateError, grpc.StatusCode.FAILED_PRECONDITION),  # first: it is an InvalidRequestError too
    ((InvalidRequestError, RulesError), grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownMemberError, grpc.StatusCode.NOT_FOUND),
    ((PublishBusyError, ReshardBusyError, NotYetError), grpc.StatusCode.FAILED_PRECONDITION),
    ((OutOfOrderError, MovedAwayError, CheckpointFailedError), grpc.StatusCode.ABORTED),
    ((StorageFullError, OverloadedError), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ((ShardUnavailableError, RayActorError, ActorDiedError, ActorUnavailableError, PublishUnfinishedError,
      StoppingError),
     grpc.StatusCode.UNAVAILABLE),
]


def answers_errors(method: Callable) -> Callable:
    """Turn patron's errors into gRPC status codes with messages an operator can act on."""
    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if isinstance(request, Unreadable):
                raise InvalidRequestError(request.reason)
            return await method(self, request, context)
        except Exception as error:
            await abort_with(context, error)
    return unary


async def _only(requests: AsyncIterator) -> Any:
    """The one request of a unary call received as a stream."""
    async for request in requests:
        return request
    raise InvalidRequestError("the call carried no request")


def status_code(error: Exception) -> grpc.StatusCode:
    """The code a failure is answered with (docs/api.md's table), for every service."""
    error = root_cause(error)
    if isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    if disk_full(error):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return next((code for kinds, code in _CODES if isinstance(error, kinds)), grpc.StatusCode.INTERNAL)


def _count_refusal(metrics: Metrics, error: Exception) -> None:
    metrics.batches_refused.labels(status_code(error).name).inc()
    if storage_full(error):  # the queue's RESOURCE_EXHAUSTED is not an SRE's page; a full disk is
        metrics.storage_full.inc()


async def abort_with(context: grpc.aio.ServicerContext, error: Exception) -> None:
    if isinstance(error, grpc.aio.AbortError):
        raise error
    error = original(error)
    code = status_code(error)
    message = "\n".join(error.told) if isinstance(error, RulesError) else str(error)
    if disk_full(error):
        message = f"the data folder's disk is full ({error}): free space and ask again; what was committed stays"
    if code is grpc.StatusCode.UNAVAILABLE and not isinstance(error, PatronError):  # patron's own say what happened
        # not "nothing was applied": the shard may have committed before it died, and a call
        # spread over shards (EnrollBatch, Import) may have been committed on the others
        message = (f"a shard is unavailable (restarting?); the call may have been applied in full, in part or "
                   f"not at all: send it again (each of patron's calls is safe to repeat): {error}")
    elif code is grpc.StatusCode.INTERNAL:
        log.exception("unexpected error", exc_info=error)
        message = f"internal error: {type(error).__name__}: {error}"
    elif code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        _refused(error, context)
    await context.abort(code, within_a_header(message))


MOST_DETAILS_BYTES = 2_000
"""gRPC carries a status's message in a header, each byte outside printable ASCII written as three:
past 8 KiB a client may drop the answer, past 16 KiB it always does, and sees RESOURCE_EXHAUSTED,
which docs/api.md says to retry (an outside probe: a 17,000-character member id, echoed back
in "unknown member", was retried for ever). 2,000 bytes stay under 8 KiB however written."""


def within_a_header(message: str) -> str:
    """The message, its middle cut out when it is longer than a status's header carries well
    (a value the request sent, echoed in full; a long list of problems)."""
    data = message.encode()
    if len(data) <= MOST_DETAILS_BYTES:
        return message
    half = MOST_DETAILS_BYTES // 2 - 40
    head, tail = data[:half].decode(errors="ignore"), data[-half:].decode(errors="ignore")
    return f"{head} [... {len(message) - len(head) - len(tail):,} characters cut ...] {tail}"


def _refused(error: Exception, context: grpc.aio.ServicerContext) -> None:
    """A refusal is logged (throttled), and an overload's says when room is likely."""
    _refusals.warning(f"refused: {error}")
    if isinstance(error, OverloadedError) and error.retry_after > 0:
        context.set_trailing_metadata(((RETRY_AFTER, str(max(1, round(error.retry_after * 1000)))),))


class IngestService:
    READS_ITSELF = frozenset({"SubmitBatch"})
    """Overload is answered before the batch is read: parsing it would be work for nothing."""
    RAW = frozenset({"SubmitBatch", "StreamBatches"})
    """Batches arrive as bytes: each shard is sent the bytes of its transactions, not records."""

    def __init__(self, coordinator: Coordinator, max_batch: int) -> None:
        self.coordinator = coordinator
        self.max_batch = max_batch
        self.refusals_first = RefusalsFirst()
        self.stopping = False
        """Set when the server begins to stop: an open stream's batches in flight are answered and
        its next one ends it (gRPC's grace let open streams go on taking batches until it ran out)."""
        self._overloaded = coordinator.metrics.batches_refused.labels(grpc.StatusCode.RESOURCE_EXHAUSTED.name)

    async def SubmitBatch(self, requests: AsyncIterator, context: grpc.aio.ServicerContext) -> bytes:
        if self.stopping:  # serve's gateway takes calls until node gateways have stopped
            await abort_with(context, StoppingError())
        admitted = self._admit()
        if isinstance(admitted, OverloadedError):
            return self._overload(admitted, context)
        metrics = self.coordinator.metrics
        metrics.batches_in_flight.inc()
        try:
            try:
                request = await _only(requests)
                received = time.perf_counter()
                if isinstance(request, Unreadable):
                    raise InvalidRequestError(request.reason)
                routed = await self._route_when_free(request, admitted=admitted)
            finally:
                self.refusals_first.finished()
                for shard in admitted:  # the room this batch did not take
                    self.coordinator.lanes[shard].release()
            return await self._settle(*routed, received)
        except Exception as error:
            _count_refusal(metrics, error)
            await abort_with(context, error)
        finally:
            metrics.batches_in_flight.dec()

    def _admit(self) -> set[int] | OverloadedError:
        """Room on every shard, reserved before the batch is read (nearly every batch has members
        on every shard), or at once, while any shard's queue is full, the refusal to answer:
        reading a batch only to refuse it is what made refusals slow, and without the reservation
        every call arriving as a slot frees would be let in, read, and all but one refused. Nor
        are more than a few let in at once (`RefusalsFirst.refusal`)."""
        lanes, gate = self.coordinator.lanes, self.refusals_first
        if any(2 * (lane.waiting + lane.reserved) >= lane.queue_limit for lane in lanes):
            gate.arrived()  # calls may be arriving faster than they leave: refusals first
        if (refusal := gate.refusal()) is not None:
            return refusal
        if (full := next((lane for lane in lanes if lane.full()), None)) is not None:
            gate.finished()
            return full.refusal()
        for lane in lanes:
            lane.reserve()
        return {lane.shard for lane in lanes}

    def _overload(self, refusal: OverloadedError, context: grpc.aio.ServicerContext) -> bytes:
        """RESOURCE_EXHAUSTED, as `abort_with` would answer it, but set on the call instead of raised
        through it (and through grpc.aio's frames): under overload this is most calls. Without
        exceptions patron's own part of a refusal fell from about 132,000 to 62,000 instructions
        (bench/refusal_cost.py; grpc.aio's own is about 440,000)."""
        self._overloaded.inc()
        _refused(refusal, context)
        context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
        context.set_details(str(refusal))
        return b""

    async def StreamBatches(self, requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
        """Batches are routed as they arrive (so they reach shards in order) and acknowledged
        in the same order; a few are in flight at once. The stream ends at the first batch that
        fails, and shards apply nothing of the stream after a part of it they did not commit."""
        pending: asyncio.Queue = asyncio.Queue(maxsize=8)
        stream = Stream()
        in_flight = self.coordinator.metrics.batches_in_flight  # streamed ones too: the usual senders'

        async def read() -> None:
            try:
                async for request in requests:
                    if isinstance(request, Unreadable):
                        raise InvalidRequestError(request.reason)
                    if self.stopping:
                        raise StoppingError()
                    received = time.perf_counter()
                    routed = await self._route_when_free(request, stream)
                    in_flight.inc()
                    settled = asyncio.ensure_future(self._settle(*routed, received))
                    settled.add_done_callback(lambda _: in_flight.dec())
                    await pending.put(_outcome_may_go_unread(settled))
            except Exception as error:  # answered in order, after the batches before it
                failed = _outcome_may_go_unread(asyncio.get_running_loop().create_future())
                failed.set_exception(error)
                await pending.put(failed)
            await pending.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (settled := await pending.get()) is not None:
                try:
                    yield await settled
                except Exception as error:
                    _count_refusal(self.coordinator.metrics, error)
                    await abort_with(context, error)
        finally:
            reader.cancel()

    async def _route_when_free(self, data: bytes, stream: Stream | None = None, admitted: set[int] | None = None
                               ) -> tuple[str, int, list[tuple[int, list[int], asyncio.Future]]]:
        """`_route`, once no member of the batch is in a virtual shard being moved: a stream's
        later batches wait behind it, so its order per member holds (actors/resharding.py). While
        calls arrive at full queues, it waits its turn behind them (actors/refusals_first.py)."""
        read_at = self.refusals_first.clock()
        while True:
            async with self.refusals_first.turn(read_at):
                routed = self._route(data, stream, admitted)
            if routed is not None:
                return routed
            await self.coordinator.resharding.released()

    def _route(self, data: bytes, stream: Stream | None = None, admitted: set[int] | None = None
               ) -> tuple[str, int, list[tuple[int, list[int], asyncio.Future]]] | None:
        """(batch id, transactions, parts sent). Find each transaction's shard by its member id
        alone, check each of those shards has room (or room was reserved for it: `admitted`,
        whose shards it takes out as it uses them), and only then cut the batch into parts and
        queue each now, synchronously, so order is kept; a stream's parts say which of its
        batches each shard must have committed before them."""
        batch = _batch(data)
        count = batch.count
        if count > self.max_batch:
            raise InvalidRequestError(f"batch {batch.batch_id!r} has {count:,} transactions; "
                                      f"the limit is {self.max_batch:,}")
        coordinator, lanes = self.coordinator, self.coordinator.lanes
        if coordinator.resharding.held(batch.member_ids()):
            return None
        by_shard = batch.shards(coordinator.layout)
        if waiting := sorted(coordinator.behind.intersection(by_shard)):
            raise ShardUnavailableError(f"shard {waiting[0]} is taking the rules in force (version "
                                        f"{coordinator.programme.version}) after a restart; nothing of the batch was "
                                        f"applied: send it again")
        admitted = admitted if admitted is not None else set()
        for shard in set(by_shard) - admitted:
            if lanes[shard].full():
                raise lanes[shard].refusal()
        parts = batch.parts(by_shard)
        places = stream.place_batch(list(parts)) if stream is not None else {}
        routed = []
        for shard, (indices, part) in parts.items():
            reserved = shard in admitted
            admitted.discard(shard)
            sent = lanes[shard].send("apply", _encode(BatchPart(part, *places.get(shard, ()), batch_id=batch.batch_id)),
                                     reserved=reserved)
            if stream is not None:
                stream.watch(sent)
            routed.append((shard, indices, sent))
        return batch.batch_id, count, routed

    async def _settle(self, batch_id: str, count: int, routed: list[tuple[int, list[int], asyncio.Future]],
                      received: float) -> bytes:
        """The acknowledgement once every part is committed, as bytes: the shards' result
        entries put back in the batch's order. When a part failed, the others are waited for
        too, so the error can say what was committed and what was not."""
        metrics = self.coordinator.metrics
        answers = await asyncio.gather(*(future for _, _, future in routed), return_exceptions=True)
        entries: list[bytes] = [b""] * count
        for (shard, indices, _), answer in zip(routed, answers, strict=True):
            if not isinstance(answer, BaseException):
                part = _decode_answer(answer)
                if len(routed) == 1:  # the whole batch, its results already in the batch's order
                    entries = [part.results]
                else:
                    for index, entry in zip(indices, part.entries(), strict=True):
                        entries[index] = entry
                metrics.record_batch(shard, part.stats)
        if any(isinstance(answer, BaseException) for answer in answers):
            raise failed_batch(batch_id, [(shard, len(indices), answer) for (shard, indices, _), answer
                                          in zip(routed, answers, strict=True)])
        seconds = time.perf_counter() - received
        metrics.batch_latency.observe(seconds)
        log.debug("batch acknowledged", extra={"batch_id": batch_id, "transactions": count,
                                                "shards": [r[0] for r in routed], "seconds": round(seconds, 4)})
        return ack_bytes(batch_id, entries)


def _outcome_may_go_unread(future: asyncio.Future) -> asyncio.Future:
    """A stream's batch still queued when an earlier one failed is never answered: the stream
    ends at the failure, and the client resends from there. Its error is looked at here, as it
    completes, or asyncio would log each as an ERROR with a traceback ("Task exception was never
    retrieved"), and run that logging from whatever finalizes it later. Awaiting it still raises."""
    future.add_done_callback(_looked_at)
    return future


def _looked_at(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _follow_on(page: list[LedgerEntry], member_id: str, after_seq: int) -> bool:
    """Whether a page is the member's entries after `after_seq`, in order: positions a move left
    behind hold other entries since (another member's, or the member's own after a move back)."""
    for entry in page:
        if entry.member_id != member_id or entry.seq <= after_seq:
            return False
        after_seq = entry.seq
    return True


def _enrollment(request: pb.EnrollRequest) -> Enrollment:
    attributes, dates = attributes_from(request.attributes)
    return Enrollment(member_id=request.member_id, channel=request.channel, birthday=request.birthday,
                      source=request.source, content=request.content, campaign=request.campaign,
                      attributes=attributes, date_attributes=dates)


def _import_request(data: bytes) -> pb.ImportRequest:
    try:
        return pb.ImportRequest.FromString(data)
    except DecodeError as error:
        raise InvalidRequestError(f"not a {pb.ImportRequest.DESCRIPTOR.full_name}: {error}") from None


class MembersService:
    RAW = frozenset({"Import"})
    """An import's rows are forwarded to shards as the client encoded them."""

    def __init__(self, coordinator: Coordinator, max_batch: int = 10_000) -> None:
        self.coordinator = coordinator
        self.max_batch = max_batch
        self.versions = RuleVersions(coordinator.folder)

    async def _on_shard(self, member_id: str, method: str, *args: Any) -> Any:
        """Reads of committed state wait for no batch (they still see every acknowledged one); writes
        queue, after a move of the member's virtual shard if one is under way."""
        if method in _READS:
            return await self.coordinator.read_member(member_id, method, *args)
        await self.coordinator.resharding.free([member_id])
        return await self.coordinator.call(self.coordinator.shard_for(member_id), method, *args)

    @answers_errors
    async def GetMember(self, request: pb.GetMemberRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        summary = await self._on_shard(request.member_id, "member", request.member_id)
        if summary is None:
            raise UnknownMemberError(request.member_id)
        return member_message(summary)

    async def ListLedger(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator:
        try:
            if isinstance(request, Unreadable):
                raise InvalidRequestError(request.reason)
            if request.limit < 0:  # was read as "all"
                raise InvalidRequestError(f"limit: expected 0 (every entry) or more, got {request.limit}")
            if await self.coordinator.read_member(request.member_id, "member", request.member_id) is None:
                raise UnknownMemberError(request.member_id)
            programme = self.coordinator.programme
            async for entry in self._entries(request.member_id, max(request.after_seq, 0), request.limit):
                names = self.versions.names(entry.rule_version, programme)  # the version that wrote it
                yield ledger_entry(entry, names.tiers, names.why)
        except Exception as error:
            await abort_with(context, error)

    async def _entries(self, member_id: str, after_seq: int, limit: int) -> AsyncIterator[LedgerEntry]:
        """The member's entries after `after_seq`, oldest first, `limit` at most (0: all): one walk of
        its chain, then pages by position, so a long history costs the shard a short call per page,
        never a walk per page. Positions are one shard's: when a move hands the member on
        meanwhile, the source deletes its copy and reuses its last positions for new entries (a
        walk found nothing there, a page failed or held another member's entries: an outside probe
        and a review), and the rest is read from the owner, after the last entry given."""
        coordinator, given, waited = self.coordinator, 0, 0.0
        while True:
            shard = coordinator.shard_for(member_id)
            try:
                positions = await coordinator.read(shard, "ledger_positions", member_id, after_seq)
                if coordinator.moved_from(shard, member_id):
                    continue
                if limit > 0:
                    positions = positions[:limit - given]
                for start in range(0, len(positions), LEDGER_PAGE):
                    wanted = positions[start:start + LEDGER_PAGE]
                    page = await coordinator.read(shard, "ledger_at", wanted)
                    if len(page) != len(wanted) or not _follow_on(page, member_id, after_seq):
                        raise MovedAwayError(f"member {member_id!r}'s entries left shard {shard}")
                    for entry in page:
                        yield entry
                        after_seq, given = entry.seq, given + 1
                return
            except Exception as error:
                waited = await coordinator.after_failed_read(error, shard, member_id, waited)

    @answers_errors
    async def Enroll(self, request: pb.EnrollRequest, context: grpc.aio.ServicerContext) -> pb.EnrollResponse:
        summary, created = await self._on_shard(request.member_id, "enroll", _enrollment(request))
        return pb.EnrollResponse(member=member_message(summary), created=created)

    @answers_errors
    async def EnrollBatch(self, request: pb.EnrollBatchRequest, context: grpc.aio.ServicerContext
                          ) -> pb.EnrollBatchResponse:
        """Grouped by shard, each part enrolled in one commit; answers in request order."""
        if len(request.members) > self.max_batch:
            raise InvalidRequestError(f"{len(request.members):,} members in one EnrollBatch; "
                                      f"the limit is {self.max_batch:,}")
        coordinator = self.coordinator
        await coordinator.resharding.free(member.member_id for member in request.members)
        parts: dict[int, tuple[list[int], list[Enrollment]]] = {}
        for index, member in enumerate(request.members):
            indices, enrollments = parts.setdefault(coordinator.shard_for(member.member_id), ([], []))
            indices.append(index)
            enrollments.append(_enrollment(member))
        sent = [(indices, coordinator.lanes[shard].send("enroll_many", enrollments))
                for shard, (indices, enrollments) in parts.items()]
        answers: dict[int, pb.EnrollResponse] = {}
        for indices, future in sent:
            for index, (summary, created, error) in zip(indices, await future, strict=True):
                answers[index] = (pb.EnrollResponse(member=member_message(summary), created=created)
                                  if summary is not None else pb.EnrollResponse(error=error))
        return pb.EnrollBatchResponse(members=[answers[i] for i in range(len(answers))])

    @answers_errors
    async def Import(self, data: bytes, context: grpc.aio.ServicerContext) -> pb.ImportResponse:
        """Each shard's rows go in one call and one commit, as MessagePack (actors/opening_wire.py);
        only the rows not imported come back, by their index in the request."""
        request = _import_request(data)
        if not request.import_id or len(request.import_id) > 100:
            raise InvalidRequestError("import_id: expected 1 to 100 characters; it makes a resent chunk harmless")
        rows = request_rows(request)
        if len(rows) > self.max_batch:
            raise InvalidRequestError(f"{len(rows):,} members in one Import; the limit is {self.max_batch:,}")
        coordinator = self.coordinator
        await coordinator.resharding.free(row.member_id for row in rows)
        parts: dict[int, list[int]] = {}
        for index, shard in enumerate(shards_of(coordinator.layout, [row.member_id for row in rows])):
            parts.setdefault(shard, []).append(index)
        sent = [(indices, coordinator.lanes[shard].send("import_members", request.import_id,
                                                        encode_rows([rows[i] for i in indices])))
                for shard, indices in parts.items()]
        response = pb.ImportResponse()
        for indices, future in sent:
            answer = await future
            response.imported += answer.imported
            response.imported_before += answer.imported_before
            for rejection in answer.rejected:
                response.rejected.add(index=indices[rejection.index], reason=rejection.reason,
                                      detail=rejection.detail)
        response.rejected.sort(key=lambda rejection: rejection.index)
        return response

    @answers_errors
    async def SetStatus(self, request: pb.SetStatusRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        if not 0 < request.action <= len(STATUS_ACTIONS):
            raise InvalidRequestError("action: expected one of " + ", ".join(
                f"STATUS_ACTION_{a.upper()}" for a in STATUS_ACTIONS))
        action = STATUS_ACTIONS[request.action - 1]
        return member_message(await self._on_shard(request.member_id, "set_status", request.member_id, action,
                                                   _reason(request.reason)))

    @answers_errors
    async def SetTags(self, request: pb.SetTagsRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        return member_message(await self._on_shard(request.member_id, "set_tags", request.member_id,
                                                   list(request.add), list(request.remove),
                                                   _reason(request.reason)))

    @answers_errors
    async def SetTier(self, request: pb.SetTierRequest, context: grpc.aio.ServicerContext) -> pb.Member:
        """SPEC §6's tier set by hand: the engine and shards had it, the API did not (an outside probe)."""
        return member_message(await self._on_shard(request.member_id, "set_tier", request.member_id, request.tier,
                                                   _reason(request.reason)))

    @answers_errors
    async def Adjust(self, request: pb.AdjustRequest, context: grpc.aio.ServicerContext) -> pb.AdjustResponse:
        if not request.request_id:
            raise InvalidRequestError("request_id: required; it makes a resent adjustment harmless")
        result, summary = await self._on_shard(request.member_id, "adjust", request.member_id, request.request_id,
                                               request.points, _reason(request.reason))
        answer = pb.AdjustResponse(result=result_message(result))
        if summary is not None:
            answer.member.CopyFrom(member_message(summary))
        return answer


MOST_REASON = 1_000
"""Characters of an operator's reason: it is kept in the ledger entry it explains (a probe's 1 MiB
reason was, and every read of that ledger carried it)."""


def _reason(text: str) -> str:
    if len(text) > MOST_REASON:
        raise InvalidRequestError(f"reason: expected at most {MOST_REASON:,} characters, got {len(text):,}")
    return text


def _log_checkpoint(copying: asyncio.Future) -> None:
    """A checkpoint asked for, in serve's log: its failure was told only to the caller (an SRE probe)."""
    if copying.cancelled():
        return
    if (error := copying.exception()) is not None:
        log.error("a checkpoint asked for failed; nothing of it was kept", extra={"error": job_error(error)})
    else:
        made = copying.result()
        log.info("checkpoint", extra={"checkpoint": made.name, "bytes": made.bytes})


class AdminService:
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    @answers_errors
    async def PublishRules(self, request: pb.PublishRulesRequest, context: grpc.aio.ServicerContext
                           ) -> pb.PublishRulesResponse:
        published, reevaluating = await self.coordinator.publish(request.rules_toml, request.count_past_spend)
        return pb.PublishRulesResponse(version=published.version, reevaluating=reevaluating)

    @answers_errors
    async def GetRules(self, request: pb.GetRulesRequest, context: grpc.aio.ServicerContext) -> pb.Rules:
        rules = self.coordinator.rules
        return pb.Rules(version=rules.version, rules_toml=rules.text, published_at=rules.published_at)

    @answers_errors
    async def RunMidnight(self, request: pb.RunMidnightRequest, context: grpc.aio.ServicerContext
                          ) -> pb.RunMidnightResponse:
        until, coordinator = _date(request.date), self.coordinator
        if request.background:
            coordinator.start_midnight(until, request.allow_future)
            summary = coordinator.midnight
        else:
            summary = await coordinator.run_midnight(until, request.allow_future)
        return pb.RunMidnightResponse(dates=summary.dates, members_processed=summary.members,
                                      anomalies=summary.anomalies, seconds=summary.seconds,
                                      running=summary.running, until=summary.until)

    @answers_errors
    async def Checkpoint(self, request: pb.CheckpointRequest, context: grpc.aio.ServicerContext
                         ) -> pb.CheckpointResponse:
        # a caller that goes away (a deadline) leaves the checkpoint going: cancelled, its partial copy
        # was removed while the shards still copied into it (a review)
        copying = asyncio.ensure_future(self.coordinator.checkpoint())
        copying.add_done_callback(_log_checkpoint)  # also when the caller has gone
        made = await asyncio.shield(copying)
        return pb.CheckpointResponse(name=made.name, bytes=made.bytes, kept=made.kept)

    @answers_errors
    async def GetAnomalyReport(self, request: pb.GetAnomalyReportRequest, context: grpc.aio.ServicerContext
                               ) -> pb.AnomalyReport:
        day = _date(request.date)
        open_day = min((parse_day(s.business_day) for s in await self.coordinator.status() if s.business_day),
                       default=0)
        # the days before the folder began are closed by its first run, which reports a late
        # transaction's crossing there: until it, they answered no rows, read as "no anomalies"
        first_run = open_day <= self.coordinator.layout.first_day  # 0 in a folder made before it was kept
        if open_day and (day >= open_day or first_run):  # it answered with no rows (two outside probes)
            before = "; the data folder's first run closes the days before it began" if day < open_day else ""
            raise NotYetError(
                f"the anomaly report of {iso(day)} is made by the midnight run that closes that day (the business "
                f"day is {iso(open_day)}{before}); until then, members crossing the threshold are in the "
                f"anomaly_flagged events (Events.Subscribe) and counted in patron_anomalies_flagged_total")
        rows = await self.coordinator.anomaly_report(iso(day))
        return pb.AnomalyReport(date=iso(day), rows=[anomaly_row(row) for row in rows])

    @answers_errors
    async def GetStatus(self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext
                        ) -> pb.StatusResponse:
        coordinator = self.coordinator
        statuses = await coordinator.status_as_seen()
        answer = pb.StatusResponse(rule_version=coordinator.rules.version,
                                   virtual_shards=coordinator.layout.virtual_shards, data_id=coordinator.data_id)
        nodes = coordinator.layout.nodes  # on a cluster: which machine to look at, or bring back
        for status in statuses:
            node = nodes.get(str(status.shard), "")
            down = f"{status.down} (its node: {node})" if status.down and node else status.down
            answer.shards.add(shard=status.shard, ready=status.ready, members=status.members,
                              transactions=status.transactions, business_day=status.business_day,
                              rule_version=status.rule_version, disk_bytes=status.disk_bytes,
                              member_bytes=status.member_bytes, priority=status.priority,
                              huge_pages=status.huge_pages, down=down, node=node)
        statuses = [status for status in statuses if status.ready]  # counts of the shards that answered
        done, total = coordinator.recalculation(statuses)
        answer.recalculation.running = coordinator.recalculation_running(statuses)
        answer.recalculation.version = coordinator.rules.version
        answer.recalculation.members_done = done
        answer.recalculation.members_total = total
        answer.members_per_tag.update(coordinator.tag_counts(statuses))
        if (run := coordinator.midnight) is not None:
            answer.midnight.CopyFrom(pb.MidnightProgress(
                running=run.running, until=run.until, dates=run.dates, date=run.date, members_done=run.members_done,
                members_total=run.members_total, members_processed=run.members, anomalies=run.anomalies,
                seconds=time.monotonic() - run.started if run.running else run.seconds, error=run.error))
        if coordinator.resharding.progress is not None:
            answer.resharding.CopyFrom(self._resharding())
        return answer

    @answers_errors
    async def MoveVirtualShard(self, request: pb.MoveVirtualShardRequest, context: grpc.aio.ServicerContext
                               ) -> pb.Resharding:
        self.coordinator.resharding.start_move(request.virtual_shard, request.to)
        return self._resharding()

    @answers_errors
    async def Rebalance(self, request: pb.RebalanceRequest, context: grpc.aio.ServicerContext) -> pb.Resharding:
        if request.shards < 0:
            raise InvalidRequestError(f"shards: expected 0 (as many as now) or more, got {request.shards}")
        self.coordinator.resharding.start_rebalance(request.shards)
        return self._resharding()

    def _resharding(self) -> pb.Resharding:
        progress, layout = self.coordinator.resharding.progress, self.coordinator.layout
        owned = [0] * layout.shards
        for owner in layout.owners:
            owned[owner] += 1
        return pb.Resharding(
            running=progress.running, shards=progress.shards, planned=progress.planned, done=progress.done,
            members_moved=progress.members_moved, virtual_shard=progress.vshard, to=progress.to, error=progress.error,
            seconds=time.monotonic() - progress.started if progress.running else progress.seconds, owned=owned)


def _date(text: str) -> int:
    try:
        return parse_day(text)
    except ValueError:
        raise InvalidRequestError(f"date: expected a local date as YYYY-MM-DD, got {text!r}") from None
