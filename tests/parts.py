"""Batch parts as the gateway sends them to a shard, and the shard's answers read back as results."""

import msgspec

from actors.batch_order import BatchPart
from actors.batch_stats import BatchStats
from actors.batch_wire import PartAnswer
from client import transaction_message
from engine.transactions import Transaction, TxnResult
from proto import patron_pb2 as pb

__all__ = ["counted_of", "part", "results_of", "stats_of"]

_OUTCOMES = {number: name.removeprefix("OUTCOME_").lower() for name, number in pb.Outcome.items()}
_decode = msgspec.msgpack.Decoder(PartAnswer).decode


def part(txns: list[Transaction], stream: str = "", number: int = 0, after: int = 0, batch_id: str = "") -> bytes:
    data = pb.TransactionBatch(transactions=[transaction_message(txn) for txn in txns]).SerializeToString()
    return msgspec.msgpack.encode(BatchPart(data, stream, number, after, batch_id))


def results_of(answer: bytes) -> list[TxnResult]:
    ack = pb.BatchAck.FromString(_decode(answer).results)
    return [TxnResult(r.txn_id, _OUTCOMES[r.outcome], r.points, r.growth, r.reason, r.value_minor, r.coupon_code)
            for r in ack.results]


def counted_of(answers: list[bytes]) -> dict[str, int]:
    """"kind outcome reason" -> transactions, as the answers to a group of parts count them for
    metrics (the first carries the commit's counts)."""
    counted: dict[str, int] = {}
    for answer in answers:
        for key, count in _decode(answer).stats.outcomes.items():
            counted[key] = counted.get(key, 0) + count
    return counted


def stats_of(answers: list[bytes]) -> BatchStats:
    """What the answers to a group of parts say the commit did (the first carries it)."""
    return _decode(answers[0]).stats
