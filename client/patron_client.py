"""A small client for patron's gRPC API: batching, and retries of every batch that was not
acknowledged (safe, because transaction ids make a resent batch harmless)."""

import itertools
import numbers
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import grpc
import msgspec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.bounds import LIMIT, NOT_AN_INTEGER
from proto import patron_pb2 as pb
from proto import patron_pb2_grpc as rpc

__all__ = ["MOST_QUANTITY", "NOT_TIMED_OUT", "RETRIABLE", "RETRY_AFTER", "UNREACHED", "PatronClient", "StreamError",
           "UnsendableError", "backoff", "enroll_request", "line_message", "retriable", "retry_after",
           "sendable_token", "transaction_message"]

RETRIABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})
NOT_TIMED_OUT = RETRIABLE - {grpc.StatusCode.DEADLINE_EXCEEDED}
"""What an operator's change (card status, tier, tags) and a midnight run are tried again on. One
past its deadline may still be queued where it was sent: sent again, on another gateway too, it
might be applied after a later change the caller then makes (a freeze after the unfreeze that
followed it: a review), and a midnight run's caller gave its timeout to stop waiting."""
UNREACHED = frozenset({grpc.StatusCode.UNAVAILABLE})
"""What a call that starts a job (a move, a rebalance, a checkpoint) is tried again on: a second
start of a job the first one started is refused as busy, or is another checkpoint, so only what
never reached a working server is sent again."""
FAIL_OVER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED})
"""Codes after which a client given several gateways goes on with the next. UNIMPLEMENTED: what
answered does not know patron's calls, so it is no gateway of ours any more (a gateway that moved
left its port to another program); it is tried again only while some gateway has not said it."""
_KINDS = {"purchase": pb.KIND_PURCHASE, "refund": pb.KIND_REFUND, "event": pb.KIND_EVENT,
          "recharge": pb.KIND_RECHARGE, "adjustment": pb.KIND_ADJUSTMENT, "redeem": pb.KIND_REDEEM,
          "payment": pb.KIND_PAYMENT, "coupon_issue": pb.KIND_COUPON_ISSUE, "coupon_use": pb.KIND_COUPON_USE}
_STATUSES = {"": pb.STATUS_UNSPECIFIED, "paid": pb.STATUS_PAID, "pending": pb.STATUS_PENDING,
             "cancelled": pb.STATUS_CANCELLED}
_ACTIONS = {"freeze": pb.STATUS_ACTION_FREEZE, "unfreeze": pb.STATUS_ACTION_UNFREEZE,
            "report_lost": pb.STATUS_ACTION_REPORT_LOST, "cancel_lost": pb.STATUS_ACTION_CANCEL_LOST,
            "clear_abnormal": pb.STATUS_ACTION_CLEAR_ABNORMAL, "release_held": pb.STATUS_ACTION_RELEASE_HELD,
            "void_held": pb.STATUS_ACTION_VOID_HELD}
STATUS_ACTIONS = tuple(_ACTIONS)
"""What `set_status` takes: a card's actions, as SetStatus names them (without STATUS_ACTION_)."""


RETRY_AFTER = "patron-retry-after-ms"
"""Trailing metadata of an overload refusal: milliseconds until the server expects room."""


_TOO_LARGE = "larger than max"
"""gRPC's own RESOURCE_EXHAUSTED for a message over a limit ("CLIENT: Sent message larger than
max", "SERVER: Received ...", "CLIENT: Received ..." for an answer): sending again cannot change
it (it was retried for about 10 s)."""


class StreamError(grpc.RpcError):
    """A stream that broke on the client's side (no answer in time, or ended with batches
    unanswered): told as gRPC's errors are, so the stream's resend and failover take it.

    What `stream` raises when it gives up, too: `unacknowledged` holds the batches it had sent (or
    taken from the caller's iterator) that were not acknowledged, in order. The caller sends them
    again before what its iterator still holds, and per member nothing is applied out of order.
    `source_error`: what the caller's iterator raised before the stream gave up, if it did (it
    holds nothing more then)."""

    def __init__(self, code: grpc.StatusCode, details: str, unacknowledged: Sequence[Any] = (),
                 cause: Any = None, source_error: Exception | None = None) -> None:
        super().__init__(details)
        self._code, self._details = code, details
        self.unacknowledged = list(unacknowledged)
        self._cause = cause
        self.source_error = source_error

    def trailing_metadata(self) -> Any:
        metadata = getattr(self._cause, "trailing_metadata", None)
        return (metadata() or ()) if metadata is not None else ()

    def __getattr__(self, name: str) -> Any:  # debug_error_string(), initial_metadata()... of gRPC's error
        if name.startswith("_") or self.__dict__.get("_cause") is None:
            raise AttributeError(name)
        return getattr(self._cause, name)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Silence:
    """Cancels a stream's call when no answer comes for `seconds` while batches are unanswered
    (None: never): a gateway that accepted the stream and went silent held a till for ever (an
    outside probe). One thread a stream, told of each answer."""

    def __init__(self, call: Any, seconds: float | None) -> None:
        self.call, self.seconds, self.fired = call, seconds, False
        self._deadline: float | None = None
        self._stopped = False
        self._changed = threading.Condition()
        if seconds is not None:
            threading.Thread(target=self._watch, name="patron-stream-watch", daemon=True).start()

    def wait(self) -> None:
        """Batches wait for an answer from now on."""
        self._set(time.monotonic() + self.seconds if self.seconds is not None else None)

    def heard(self) -> None:
        self._set(None)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _set(self, deadline: float | None) -> None:
        with self._changed:
            self._deadline = deadline
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while not self._stopped:
                if self._deadline is None:
                    self._changed.wait()
                elif (left := self._deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                else:
                    self.fired = True
                    self.call.cancel()
                    return


def retriable(error: Any, codes: frozenset = RETRIABLE) -> bool:
    """Whether sending again may succeed: a code among `codes`, but not a message over a size limit."""
    return error.code() in codes and _TOO_LARGE not in (error.details() or "")


def backoff(attempt: int, error: Any = None) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): 0.1, 0.2, 0.4 ... up to 2 on average,
    or what the refusal `error` said room takes when that is longer, each drawn between half and
    one and a half of that. Callers refused together then come back spread out instead of all at
    once, where each would wait behind the others' calls again, and not before room is likely."""
    return max(min(0.05 * 2 ** attempt, 2.0), retry_after(error)) * random.uniform(0.5, 1.5)


def retry_after(error: Any) -> float:
    """Seconds an overload refusal asked its caller to wait (RETRY_AFTER; at most 10), else 0."""
    metadata = getattr(error, "trailing_metadata", None)
    for key, value in (metadata() or ()) if metadata is not None else ():
        if key == RETRY_AFTER:
            try:
                return min(int(value) / 1000, 10.0)
            except ValueError:
                return 0.0
    return 0.0


MOST_PINGS_SECONDS = 5
"""Keepalive pings more often than this would be a load on the gateways for nothing."""

UNKNOWN_STATUS = -1
"""Sent for a status word patron does not know: no Status has this number, and every patron server
answers a status it does not know `unknown_status`, as replay answers the word. STATUS_UNSPECIFIED
would be read as paid."""
_INT64 = (-(1 << 63), (1 << 63) - 1)
MOST_QUANTITY = (1 << 31) - 1
"""A line's quantity is an int32 in patron.proto."""
_INT32 = (-MOST_QUANTITY - 1, MOST_QUANTITY)


class UnsendableError(ValueError):
    """A transaction the wire cannot carry as it is; `reason` is what replay answers it, or
    `malformed` when replay would take it (a quantity beyond protobuf's int32 but within ±10^15)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def transaction_message(txn: Any) -> pb.Transaction:
    """A transaction as JSON-like data (a replay line) or an engine Transaction, as protobuf.
    `kind` and `status` are the lower-case words. A word patron does not know is sent as a number
    the server rejects (`unknown_kind`, `unknown_status`), as replay rejects the word; a number
    beyond 64 bits as the nearest one that fits, which the server rejects as replay rejects the
    number (every bound it has lies far inside); a quantity the wire cannot hold raises UnsendableError."""
    fields = dict(txn) if isinstance(txn, dict) else msgspec.structs.asdict(txn)
    if unknown := [key for key in fields if key not in _TRANSACTION_FIELDS]:
        # dropped, a typo or grpcurl's camelCase (`amountMinor`) changed the transaction: a refund's
        # amount lost refunded the whole payment (an outside probe)
        raise ValueError(f"{unknown[0]!r} is not a field of a transaction (expected one of "
                         f"{', '.join(sorted(_TRANSACTION_FIELDS))})")
    lines = [line_message(line, f"lines[{n}]") for n, line in enumerate(fields.pop("lines", None) or ())]
    kind = _KINDS.get(fields.pop("kind", ""), pb.KIND_UNSPECIFIED)  # read as "unspecified": unknown_kind
    status = _STATUSES.get(fields.pop("status", "") or "", UNKNOWN_STATUS)
    _integers(fields, _TRANSACTION_INTEGERS, "")
    known = {k: _fitted(v, _INT64) for k, v in fields.items()}
    return pb.Transaction(kind=kind, status=status, lines=lines, **known)


_TRANSACTION_FIELDS = frozenset(pb.Transaction.DESCRIPTOR.fields_by_name)
_LINE_FIELDS = frozenset(pb.LineItem.DESCRIPTOR.fields_by_name)
_TRANSACTION_INTEGERS = ("occurred_at_ms", "amount_minor", "points")
_LINE_INTEGERS = ("paid_minor", "quantity")


def _integers(fields: dict, names: tuple[str, ...], where: str) -> None:
    """A float, bool or text where the wire has an integer: protobuf's TypeError named no field.
    An integer of another type (numpy's int64, from a data frame) is sent as the int it is."""
    for name in names:
        value = fields.get(name)
        if value is None or type(value) is int:
            continue
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise UnsendableError(NOT_AN_INTEGER, f"{where}{name}: expected an integer, got "
                                                  f"{type(value).__name__} {value!r}")
        fields[name] = int(value)


def line_message(line: Any, where: str = "line") -> pb.LineItem:
    """A line as a dict (replay's JSON), an engine LineItem or already a pb.LineItem; its numbers
    fitted to the wire as transaction_message's are."""
    if isinstance(line, pb.LineItem):
        return line
    fields = dict(line) if isinstance(line, dict) else msgspec.structs.asdict(line)
    if unknown := [key for key in fields if key not in _LINE_FIELDS]:  # as a transaction's (camelCase too)
        raise ValueError(f"{where}: {unknown[0]!r} is not a field of a line (expected one of "
                         f"{', '.join(sorted(_LINE_FIELDS))})")
    _integers(fields, _LINE_INTEGERS, f"{where}.")
    if "quantity" in fields:
        fields["quantity"] = _quantity(fields["quantity"], where)
    if "paid_minor" in fields:
        fields["paid_minor"] = _fitted(fields["paid_minor"], _INT64)
    return pb.LineItem(**fields)


def _fitted(value: Any, bounds: tuple[int, int]) -> Any:
    """An int beyond `bounds` as the nearest one within: same sign, still beyond every bound the
    engine checks, so it is answered as the number itself is. Anything else is left to protobuf."""
    if type(value) is not int:
        return value
    return min(max(value, bounds[0]), bounds[1])


def _quantity(value: Any, where: str) -> Any:
    """A line's quantity (int32 on the wire). A negative one is sent as the least int32 (still
    `negative_amount`); a larger one than int32 holds cannot be sent as anything the server would
    answer as replay does."""
    if type(value) is not int or value <= _INT32[1]:
        return _fitted(value, _INT32)
    if value > LIMIT:
        raise UnsendableError("amount_too_large", f"{where}.quantity: {value} is beyond 10^15")
    raise UnsendableError("malformed", f"{where}.quantity: {value} is beyond what the API carries ({_INT32[1]})")


def enroll_request(member_id: str, **fields: Any) -> pb.EnrollRequest:
    attributes = fields.pop("attributes", {})
    request = pb.EnrollRequest(member_id=member_id, **fields)
    for name, value in attributes.items():
        if isinstance(value, str):
            request.attributes[name].text = value
        elif isinstance(value, datetime):  # a date's subclass: its isoformat has a time
            raise TypeError(f"attributes.{name}: a datetime.date, not a datetime, is sent as a date")
        elif isinstance(value, date):  # read back as a date (AttributeValue.date), not text
            request.attributes[name].date = value.isoformat()
        else:
            request.attributes[name].number = value
    return request


def sendable_token(token: str) -> bool:
    """Whether gRPC metadata can carry a bearer token: printable ASCII, no spaces."""
    return all("!" <= character <= "~" for character in token)


class _Source:
    """The caller's batches for `stream`, each with a batch id; an exception the iterator raises is
    kept (`error`) and ends it, so that the batches it gave before are still answered (they were
    dropped unanswered, 700 transactions applied that the caller never heard of: an outside probe)."""

    def __init__(self, batches: Iterable[pb.TransactionBatch]) -> None:
        self.batches = iter(batches)
        self.error: Exception | None = None

    def next(self) -> pb.TransactionBatch | None:
        if self.error is not None:
            return None
        try:
            batch = next(self.batches, None)
            if batch is not None and not isinstance(batch, pb.TransactionBatch):
                raise TypeError(f"stream: expected TransactionBatch messages (client.batch, client.batches), got "
                                f"{type(batch).__name__}")
        except Exception as error:
            self.error = error
            return None
        return _with_batch_id(batch) if batch is not None else None


def _with_batch_id(batch: pb.TransactionBatch, batch_id: str | None = None) -> pb.TransactionBatch:
    """The batch, given `batch_id` (or one made here) when it has none: without one, a resend is
    scored again (rejections included), not answered as it was first."""
    if not batch.batch_id:
        batch.batch_id = batch_id or uuid.uuid4().hex
    return batch


class PatronClient:
    """Thread-safe for unary calls. `token` is sent as a bearer token; `root_certificates`
    (PEM) turns on TLS, with `certificate_chain` and `private_key` for a client certificate (given
    alone, TLS with the system's roots: a client certificate was ignored and the token sent in clear).

    `address` may be a list of gateways (`patron serve --gateway-per-node`): the client starts
    at one chosen at random, so a fleet of tills spreads over them, and stays with it; when it
    answers UNAVAILABLE or does not answer in time, the client moves to the next one, and the
    call is sent again there as `retries` says (below).

    `timeout` bounds each try of a call (a try past it is retried as `retries` says, so a call to a
    gateway that never answers in time takes about `retries` + 1 times `timeout`, plus the pauses
    between); a stream's batches wait at most `stream_timeout` seconds for their
    next acknowledgement (None: for ever), longer by default: a loaded server answers late, and a
    stream broken then sends its whole window again.

    `retries`: a refused or unreachable call is tried again this many times, pausing about 10 s in
    all for 8; a restart of the server takes about 12 s, so a program that should ride one out gives
    16 (about 25 s). Every call is harmless to send again (batches and adjustments by their ids,
    reads, enrollments, operators' changes, which ask for a state, a publish of the version in
    force, a midnight run, which joins the one in progress) and is tried again on RETRIABLE codes
    (an enrollment tried again may answer `created` false for the member its first try created),
    but an operator's change and a midnight run not past their deadline (NOT_TIMED_OUT), and a
    call that starts a job (a move, a rebalance, a checkpoint) only when the server could not be
    reached (UNREACHED). `keepalive`: seconds without traffic after which the connection is checked
    with a ping (answered within as long again, at most 10 s): a subscription or stream over a
    connection that died without a word (a host gone, a network cut) ends UNAVAILABLE instead of
    waiting for ever; at least 5."""

    def __init__(self, address: str | Sequence[str], *, timeout: float = 30.0, retries: int = 8,
                 token: str | None = None, root_certificates: bytes | None = None,
                 certificate_chain: bytes | None = None, private_key: bytes | None = None,
                 max_message_bytes: int = 64 << 20, stream_timeout: float | None = 120.0,
                 keepalive: float = 20.0) -> None:
        if keepalive < MOST_PINGS_SECONDS:
            raise ValueError(f"keepalive: at least {MOST_PINGS_SECONDS} seconds, got {keepalive}")
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.keepalive_time_ms", int(keepalive * 1000)),
                   ("grpc.keepalive_timeout_ms", int(min(keepalive, 10.0) * 1000)),
                   ("grpc.http2.ping_timeout_ms", int(min(keepalive, 10.0) * 1000)),  # gRPC's own: a minute
                   # a quiet subscription is checked too (gRPC sends a ping without data every 5 minutes at most)
                   ("grpc.http2.max_pings_without_data", 0),
                   ("grpc.http2.min_time_between_pings_ms", int(keepalive * 1000))]
        self.addresses = [address] if isinstance(address, str) else list(address)
        if not self.addresses:
            raise ValueError("PatronClient needs at least one address")
        if bool(certificate_chain) != bool(private_key):  # gRPC's core aborts the process on one alone (or empty)
            raise ValueError("a client certificate goes with its private key: give certificate_chain and "
                             "private_key together, or neither")
        if token is not None and not sendable_token(token):
            # gRPC refused it only when a call was made, with its core's trace (an outside probe)
            raise ValueError("token: a bearer token is printable ASCII without spaces (a line ending, a space or a "
                             "character outside ASCII cannot be sent)")
        if root_certificates is not None or certificate_chain:  # never a client certificate, nor the token, in clear
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self.channels = [grpc.secure_channel(a, credentials, options=options) for a in self.addresses]
        else:
            self.channels = [grpc.insecure_channel(a, options=options) for a in self.addresses]
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.retries = retries
        self._use(random.randrange(len(self.channels)))

    @property
    def address(self) -> str:
        """The gateway calls go to now."""
        return self.addresses[self._current]

    def _use(self, index: int) -> None:
        self._current = index
        self.channel = channel = self.channels[index]
        self.ingest = rpc.IngestStub(channel)
        self.members = rpc.MembersStub(channel)
        self.admin = rpc.AdminStub(channel)
        self.events = rpc.EventsStub(channel)
        self.wallet = rpc.WalletStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def _fail_over(self, error: grpc.RpcError) -> None:
        """After a gateway's UNAVAILABLE, silence, or UNIMPLEMENTED (what answered is no gateway of
        ours), calls go to the next one."""
        if len(self.channels) > 1 and error.code() in FAIL_OVER:
            self._use((self._current + 1) % len(self.channels))

    def _fail_over_from(self, gateway: int) -> Any:
        """`_fail_over` for a call that may break long after it began (a subscription): only while
        the client still uses the gateway the call went to, not one another call moved it to since."""
        def fail_over(error: grpc.RpcError) -> None:
            if self._current == gateway:
                self._fail_over(error)
        return fail_over

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> "PatronClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- ingestion ---------------------------------------------------------------------

    def batch(self, txns: Iterable[Any], batch_id: str | None = None) -> pb.TransactionBatch:
        return pb.TransactionBatch(batch_id=batch_id or uuid.uuid4().hex,
                                   transactions=[t if isinstance(t, pb.Transaction) else transaction_message(t)
                                                 for t in txns])

    def submit(self, txns: Sequence[Any] | pb.TransactionBatch, batch_id: str | None = None) -> pb.BatchAck:
        """One batch; resent with back-off while the server answers with a retriable code. A
        `TransactionBatch` without a `batch_id` is sent with `batch_id`, or one made here (the
        caller's message is left without one)."""
        if not isinstance(txns, pb.TransactionBatch):
            return self._call("ingest.SubmitBatch", self.batch(txns, batch_id))
        if batch_id and txns.batch_id and txns.batch_id != batch_id:
            raise ValueError(f"batch_id: the batch has its own, {txns.batch_id!r}, not {batch_id!r}")
        if not txns.batch_id:  # a copy: the caller's message, sent again later, is a new batch (a review)
            txns = pb.TransactionBatch(batch_id=batch_id or uuid.uuid4().hex, transactions=txns.transactions)
        return self._call("ingest.SubmitBatch", txns)

    def batches(self, txns: Iterable[Any], size: int = 1000) -> Iterator[pb.TransactionBatch]:
        if size < 1:  # islice of 0 ends at once: every transaction was dropped without a word
            raise ValueError(f"size: at least 1 transaction a batch, got {size}")
        source = iter(txns)
        while chunk := list(itertools.islice(source, size)):
            yield self.batch(chunk)

    def stream(self, batches: Iterable[pb.TransactionBatch], window: int = 8) -> Iterator[pb.BatchAck]:
        """Acknowledgements in order over StreamBatches, with up to `window` batches unanswered.
        When the stream breaks, it is reopened and every unacknowledged batch is sent again, in
        order: shards apply nothing of a stream after a batch that failed on them, so a member's
        transactions still take effect in the order they were sent. No acknowledgement within
        `stream_timeout` seconds while batches wait for one breaks it too (DEADLINE_EXCEEDED: the next
        gateway, when given several), as does a stream ended with batches unanswered. When it
        gives up (a code not worth retrying, or `retries` spent), it raises StreamError with the
        batches not acknowledged.

        A batch without a `batch_id` is given one (in the caller's message): a resend is then
        answered as it was first, a rejection included (resent without one, a rejected redeem was
        scored again after a later purchase: an outside probe). The first batch goes out as soon as
        the iterator gives it; answers come between the iterator's batches, so a source that waits
        for each sale is best read with `window=1` (or `submit`). When the iterator raises, the
        batches it gave before are answered first, then its exception is raised."""
        if window < 1:  # nothing would be sent, and the silence then taken for a server's
            raise ValueError(f"window: at least 1 batch in flight, got {window}")
        source = _Source(batches)
        unacked: deque[pb.TransactionBatch] = deque()
        tries = _Tries(self, RETRIABLE)
        while True:
            try:
                for answer in self._stream_once(source, unacked, window):
                    tries = _Tries(self, RETRIABLE)
                    yield answer
                break
            except grpc.RpcError as error:
                if not tries.again(error):
                    raise _given_up(error, unacked, source.error) from error
                time.sleep(backoff(tries.attempt, error))
        if source.error is not None:  # every batch it gave before is answered: told now (outside the
            raise source.error  # retries: an RpcError of the caller's own was taken for the stream's)

    def _stream_once(self, source: _Source, unacked: deque, window: int) -> Iterator[pb.BatchAck]:
        outgoing: queue.Queue = queue.Queue()

        def requests() -> Iterator[pb.TransactionBatch]:
            while (batch := outgoing.get()) is not None:
                yield batch

        for batch in unacked:
            outgoing.put(batch)
        exhausted = self._refill(source, unacked, outgoing, 1)  # a stream is opened for something to send
        if exhausted and not unacked:
            return
        # opened before the rest of the window is drawn, so that the first batch goes out at once
        answers = self.ingest.StreamBatches(requests(), metadata=self.metadata)
        silence = _Silence(answers, self.stream_timeout)
        try:
            exhausted = exhausted or self._refill(source, unacked, outgoing, window)
            silence.wait()  # a stream has no deadline: each answer has one
            for answer in answers:
                silence.heard()
                sent = unacked.popleft()
                if answer.batch_id != sent.batch_id:
                    raise RuntimeError(f"acknowledgement for {answer.batch_id!r}, expected {sent.batch_id!r}")
                yield answer
                exhausted = exhausted or self._refill(source, unacked, outgoing, window)
                if exhausted and not unacked:
                    return
                silence.wait()
        except grpc.RpcError:
            silence.stop()
            if silence.fired:  # our own cancel: a gateway that does not answer, moved away from
                raise StreamError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                  f"no acknowledgement within {self.stream_timeout:g} s; the unanswered batches "
                                  f"are sent again") from None
            raise
        finally:
            silence.stop()
            outgoing.put(None)
            answers.cancel()
        # ended without an error, batches unanswered (a proxy closing the stream): they are sent again,
        # on the same gateway (ABORTED is retried and moves nowhere)
        raise StreamError(grpc.StatusCode.ABORTED,
                          f"the stream ended with {len(unacked)} batches unanswered; they are sent again")

    @staticmethod
    def _refill(source: _Source, unacked: deque, outgoing: queue.Queue, window: int) -> bool:
        while len(unacked) < window:
            batch = source.next()
            if batch is None:
                return True
            unacked.append(batch)
            outgoing.put(batch)
        return False

    # -- members -----------------------------------------------------------------------

    def member(self, member_id: str) -> pb.Member | None:
        try:
            return self._call("members.GetMember", pb.GetMemberRequest(member_id=member_id))
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def ledger(self, member_id: str, after_seq: int = 0, limit: int = 0) -> list[pb.LedgerEntry]:
        request = pb.ListLedgerRequest(member_id=member_id, after_seq=after_seq, limit=limit)
        return self._retrying(lambda: list(self.members.ListLedger(request, timeout=self.timeout,
                                                                   metadata=self.metadata)))

    def enroll(self, member_id: str, **fields: Any) -> pb.EnrollResponse:
        return self._call("members.Enroll", enroll_request(member_id, **fields))

    def enroll_many(self, members: Sequence[dict]) -> pb.EnrollBatchResponse:
        """Bulk enrollment: each dict has `member_id` and the Enroll fields; answers in order,
        a bad record with its `error`."""
        request = pb.EnrollBatchRequest(members=[enroll_request(**member) for member in members])
        return self._call("members.EnrollBatch", request)

    def import_members(self, request: pb.ImportRequest) -> pb.ImportResponse:
        """One chunk of an import (patron import drives whole files: cli/importing.py); resending a
        chunk is harmless, so it is retried like a batch."""
        return self._call("members.Import", request)

    def import_future(self, request: pb.ImportRequest) -> grpc.Future:
        """`import_members` without waiting, so several chunks can be in flight."""
        return self.members.Import.future(request, timeout=self.timeout, metadata=self.metadata)

    def set_status(self, member_id: str, action: str, reason: str = "") -> pb.Member:
        if action not in _ACTIONS:  # sent as 0, the server's refusal named STATUS_ACTION_* words
            raise ValueError(f"action: expected one of {', '.join(STATUS_ACTIONS)}, got {action!r}")
        request = pb.SetStatusRequest(member_id=member_id, action=_ACTIONS[action], reason=reason)
        return self._call("members.SetStatus", request, NOT_TIMED_OUT)

    def set_tags(self, member_id: str, add: Sequence[str] = (), remove: Sequence[str] = (), reason: str = ""
                 ) -> pb.Member:
        request = pb.SetTagsRequest(member_id=member_id, add=list(add), remove=list(remove), reason=reason)
        return self._call("members.SetTags", request, NOT_TIMED_OUT)

    def set_tier(self, member_id: str, tier: str, reason: str) -> pb.Member:
        """Put the member in `tier` by hand, its validity from the business day; `reason` is required."""
        return self._call("members.SetTier", pb.SetTierRequest(member_id=member_id, tier=tier, reason=reason),
                          NOT_TIMED_OUT)

    def adjust(self, member_id: str, points: int, reason: str, request_id: str | None = None) -> pb.AdjustResponse:
        """An operator's points change; `request_id` makes it happen once. Without one a random id
        is made, kept across this call's own retries only: a caller that calls again after an
        error must pass the id of its first call, or the change may happen twice."""
        request = pb.AdjustRequest(member_id=member_id, request_id=request_id or uuid.uuid4().hex, points=points,
                                   reason=reason)
        return self._call("members.Adjust", request)

    # -- wallet ------------------------------------------------------------------------

    def quote(self, member_id: str, lines: Sequence[Any], occurred_at_ms: int = 0) -> pb.QuoteResponse:
        """What a basket (lines at shelf prices: dicts, engine LineItems or pb.LineItems) would
        cost and earn the member bought at `occurred_at_ms` (0: now), and what they could spend
        on it. Read-only, so retried like a batch."""
        request = pb.QuoteRequest(member_id=member_id, occurred_at_ms=occurred_at_ms,
                                  lines=[line_message(line, f"lines[{n}]") for n, line in enumerate(lines)])
        return self._call("wallet.Quote", request)

    def coupons(self, member_id: str, status: str = "") -> list[pb.HeldCoupon]:
        """The member's coupon instances with their terms, by code; only `status` ones when given
        (unused, used, expired, void)."""
        request = pb.ListCouponsRequest(member_id=member_id, status=status)
        return list(self._call("wallet.ListCoupons", request).coupons)

    # -- administration ----------------------------------------------------------------

    def publish_rules(self, rules_toml: str, count_past_spend: bool = False) -> pb.PublishRulesResponse:
        """Tried again as batches are: the same document sent again is answered with the version
        in force, not refused, so a retry after a lost answer is harmless."""
        request = pb.PublishRulesRequest(rules_toml=rules_toml, count_past_spend=count_past_spend)
        return self._call("admin.PublishRules", request)

    def rules(self) -> pb.Rules:
        return self._call("admin.GetRules", pb.GetRulesRequest())

    def status(self) -> pb.StatusResponse:
        return self._call("admin.GetStatus", pb.GetStatusRequest())

    def run_midnight(self, date: str, allow_future: bool = False, background: bool = False,
                     timeout: float | None = None) -> pb.RunMidnightResponse:
        """The run up to `date`, answered at its end (or at once with `background`; then
        `follow_midnight`). A date after tomorrow needs `allow_future` (test systems only). The
        answer is waited for `timeout` seconds (the client's own by default: a year of dates on a
        test system may need more); a caller that stops waiting leaves the run going."""
        request = pb.RunMidnightRequest(date=date, allow_future=allow_future, background=background)
        return self._call("admin.RunMidnight", request, NOT_TIMED_OUT, timeout=timeout)

    def follow_midnight(self, every: float = 1.0, progress: Any = None) -> pb.MidnightProgress:
        """Ask how the midnight run goes every `every` seconds until it is over; `progress` is
        called with each answer meanwhile. Each question is short, so a long run is never cut
        short by the client's timeout."""
        return self._follow("midnight", every, progress)

    def _follow(self, field: str, every: float, progress: Any) -> Any:
        while True:
            job = getattr(self.status(), field)
            if not job.running:
                return job
            if progress is not None:
                progress(job)
            time.sleep(every)

    def move_virtual_shard(self, virtual_shard: int, to: int) -> pb.Resharding:
        """Start moving one virtual shard to shard `to`; `follow_resharding` waits for the end."""
        return self._call("admin.MoveVirtualShard", pb.MoveVirtualShardRequest(virtual_shard=virtual_shard, to=to),
                          UNREACHED)

    def rebalance(self, shards: int = 0) -> pb.Resharding:
        """Start evening out the layout over `shards` (0: as many as now; more: new shards first)."""
        return self._call("admin.Rebalance", pb.RebalanceRequest(shards=shards), UNREACHED)

    def follow_resharding(self, every: float = 1.0, progress: Any = None) -> pb.Resharding:
        """As `follow_midnight`, for the move or rebalance under way."""
        return self._follow("resharding", every, progress)

    def checkpoint(self) -> pb.CheckpointResponse:
        # one that outlived its deadline may still be writing: a second would be another checkpoint
        return self._call("admin.Checkpoint", pb.CheckpointRequest(), UNREACHED)

    def anomaly_report(self, date: str) -> pb.AnomalyReport:
        return self._call("admin.GetAnomalyReport", pb.GetAnomalyReportRequest(date=date))

    def subscribe(self, after: str = "", kinds: Sequence[str] = (), name: str = "") -> Any:
        """Events after position `after` (empty: the oldest held), for ever, as an iterator of
        pb.Event; `cancel()` ends it. Keep the position of the last event processed to resume."""
        metadata = self.metadata + ((("patron-subscriber", name),) if name else ())
        call = self.events.Subscribe(pb.SubscribeRequest(after=after, kinds=list(kinds)), metadata=metadata)
        return _Subscription(call, self._fail_over_from(self._current))

    def serving(self, service: str = "") -> bool:
        """Whether the gateway in use says SERVING; one that does not answer is left for the next."""
        try:
            answer = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError as error:
            self._fail_over(error)
            return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.serving():
            if time.monotonic() > deadline:
                raise TimeoutError(f"patron was not SERVING within {timeout:.0f} s")
            time.sleep(0.1)

    def _call(self, method: str, request: Any, codes: frozenset = RETRIABLE, *, timeout: float | None = None) -> Any:
        """`method` names a stub's method ("members.GetMember"), looked up at each try: a try after
        a fail-over goes to the next gateway (the stub of the first, bound once, was tried again)."""
        stub, name = method.split(".")
        return self._retrying(lambda: getattr(getattr(self, stub), name)(request, timeout=timeout or self.timeout,
                                                                        metadata=self.metadata), codes)

    def _retrying(self, call: Any, codes: frozenset = RETRIABLE) -> Any:
        tries = _Tries(self, codes)
        while True:
            try:
                return call()
            except grpc.RpcError as error:
                if not tries.again(error):
                    raise
                time.sleep(backoff(tries.attempt, error))


class _Tries:
    """One call's (or stream's) failed tries: how many, and how many gateways in a row answered
    UNIMPLEMENTED; what both of the client's retry loops decide by."""

    def __init__(self, client: PatronClient, codes: frozenset) -> None:
        self.client, self.codes = client, codes
        self.attempt = self.unknown = 0

    def again(self, error: grpc.RpcError) -> bool:
        """After `error`: the client fails over when it is a gateway's, and whether to try again.
        `codes` are worth retrying; so is UNIMPLEMENTED, given several gateways, while fewer of
        them than there are said it in a row: the next may be a gateway of ours. When each has
        said it in turn, none knows the call (a server older than this client): that is the answer."""
        self.attempt += 1
        self.unknown = self.unknown + 1 if error.code() is grpc.StatusCode.UNIMPLEMENTED else 0
        self.client._fail_over(error)
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            worth = self.unknown < len(self.client.channels)
        else:
            worth = retriable(error, self.codes)
        return worth and self.attempt <= self.client.retries


def _given_up(error: Any, unacked: deque, source_error: Exception | None = None) -> StreamError:
    """The stream's last error, with the batches it leaves unacknowledged (StreamError); what else
    gRPC's error answers, it answers too."""
    return StreamError(error.code(), error.details() or "", unacked, error, source_error)


class _Subscription:
    """A Subscribe call that, when it breaks on an unreachable gateway, leaves the client's next
    call (a subscribe again, from the last position) for the next gateway; `cancel()` ends it."""

    def __init__(self, call: Any, fail_over: Any) -> None:
        self._call = call
        self._fail_over = fail_over

    def __iter__(self) -> "_Subscription":
        return self

    def __next__(self) -> pb.Event:
        try:
            return next(self._call)
        except grpc.RpcError as error:
            self._fail_over(error)
            raise

    def cancel(self) -> bool:
        return self._call.cancel()

    def __getattr__(self, name: str) -> Any:  # code(), details(), trailing_metadata() of the call
        return getattr(self._call, name)
