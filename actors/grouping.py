"""Batch parts that queued up for a shard, committed together, and apart when together they fail.

Parts that queued up behind each other come together and are committed at once, in order, as if
they were one: a commit's cost is shared. A part that would overtake an earlier part of its stream
that this shard did not commit is answered with that error instead (actors/batch_order.py), and so
is one for a member whose virtual shard moved away (a stale route's, actors/shard_moves.py).
If the commit of the others fails for anything but a full store, each part is committed on its
own, in order, so one that fails sinks no other: its transactions are rejected `cannot_apply`,
a final answer. When every part fails on its own too, the store is at fault, not a part: each
is answered with its error and nothing is committed. A full store stops the parts from there on,
each answered with the error, nothing of them applied."""

import logging
from collections.abc import Callable

import msgspec

from actors.batch_order import BatchPart, StreamOrder
from actors.batch_stats import BatchStats
from actors.batch_wire import PartAnswer, result_entries, transactions_of
from actors.routing import MovedAway
from engine.errors import StorageFullError
from engine.transactions import Transaction, TxnResult
from storage.codecs import Rejected

__all__ = ["apply_group"]

log = logging.getLogger("patron.shard")
_decode_part = msgspec.msgpack.Decoder(BatchPart).decode
_encode = msgspec.msgpack.Encoder().encode

Spans = list[tuple[str, int]]
"""(batch id, how many transactions) of each part, in order: whose transactions are which."""
Apply = Callable[[list[Transaction], Spans, Callable[[], list[Transaction]] | None, dict[int, str]],
                 tuple[list[TxnResult], BatchStats]]
"""Score and commit transactions, each remembered under its batch's id when rejected; the third
argument makes the same transactions anew, if given (the shard then frees each as it is scored);
the fourth, by place, the reasons a resent batch's first sending rejected some of them with."""
Recall = Callable[[str], Rejected]
"""What a committed batch of this id had rejected: the reason, by (member, transaction id)."""
Answer = bytes | Exception


def apply_group(apply: Apply, streams: StreamOrder, payloads: list[bytes], shard: int,
                away: MovedAway | None = None, recall: Recall | None = None) -> list[Answer]:
    """Parts in (their transactions as protobuf bytes), an answer (or the error) per part out, in
    order. The first answer carries what the commit did, for metrics; the others carry nothing to
    count. A part with a member of a virtual shard that moved `away` is refused whole."""
    parts = [_decode_part(payload) for payload in payloads]
    batches = [transactions_of(part.data) for part in parts]
    moved = ([away.refusal(txn.member_id for txn in txns) for txns in batches]
             if away is not None and away.vshards else None)
    refusals: list = streams.refusals(parts, moved)
    taken = [part for part, refused in zip(parts, refusals, strict=True) if refused is None]
    if not taken:
        return list(refusals)
    batches = [txns for txns, refused in zip(batches, refusals, strict=True) if refused is None]
    if _resent_within(taken):
        # a batch and its resend (its call timed out while it queued): the first commits first,
        # so that the resend finds what it rejected
        return _placed(refusals, _one_by_one(apply, recall, streams, taken, batches, shard))
    sizes = [len(txns) for txns in batches]
    try:
        answers: list[Answer] = _answers(sizes, *_scored(apply, recall, taken, batches))
        streams.committed(taken)
    except StorageFullError:
        raise
    except Exception:
        if len(taken) == 1:
            raise
        log.exception("a group of batches failed to commit; committing each on its own",
                      extra={"shard": shard, "batches": len(taken)})
        answers = _one_by_one(apply, recall, streams, taken, [transactions_of(part.data) for part in taken], shard)
    return _placed(refusals, answers)


def _placed(refusals: list, answers: list[Answer]) -> list[Answer]:
    placed = iter(answers)
    return [refused if refused is not None else next(placed) for refused in refusals]


def _resent_within(parts: list[BatchPart]) -> bool:
    ids = [part.batch_id for part in parts if part.batch_id]
    return len(ids) != len(set(ids))


def _one_by_one(apply: Apply, recall: Recall | None, streams: StreamOrder, parts: list[BatchPart],
                batches: list[list[Transaction]], shard: int) -> list[Answer]:
    answers: list[Answer] = []
    failed: list[Exception | None] = []
    for part, txns in zip(parts, batches, strict=True):
        if failed and isinstance(failed[-1], StorageFullError):
            answers.append(failed[-1])
            continue
        try:
            answers.append(_answers([len(txns)], *_scored(apply, recall, [part], [txns]))[0])
            failed.append(None)
        except StorageFullError as error:
            answers.append(error)
            failed.append(error)
        except Exception as error:
            log.exception("a batch could not be committed; its transactions are rejected cannot_apply",
                          extra={"shard": shard, "transactions": len(txns)})
            answers.append(_answers([len(txns)], [TxnResult(t.txn_id, "rejected", 0, 0, "cannot_apply") for t in txns],
                                    BatchStats({}))[0])
            failed.append(error)
    if all(error is not None and not isinstance(error, StorageFullError) for error in failed):
        return [error for error in failed if error is not None]
    streams.committed([part for part, error in zip(parts, failed, strict=False)
                       if error is None or not isinstance(error, StorageFullError)])
    return answers


def _scored(apply: Apply, recall: Recall | None, parts: list[BatchPart], batches: list[list[Transaction]]
            ) -> tuple[list[TxnResult], BatchStats]:
    """The parts' transactions scored and committed together, in order. One that a committed batch
    of the same id had rejected goes with that reason (`recalled`, by its place): its batch is
    being resent because the answer was lost, and the shard answers it as it was then, not scored
    after what later batches did (SPEC §2), unless its id was applied since. Sent in another
    batch, it is scored again (SPEC §11.1). `batches` is emptied, so that the write holds the
    transactions alone and frees each as it is scored, and reads them again from the parts if it
    scores them again."""
    recalled: dict[int, str] = {}
    at = 0
    for part, txns in zip(parts, batches, strict=True):
        known = recall(part.batch_id) if recall is not None and part.batch_id else None
        if known:  # nearly always none: a resend of a batch that had a rejection
            places: dict[tuple[str, str], int] = {}
            for offset, txn in enumerate(txns):
                if (reasons := known.get(key := (txn.member_id, txn.txn_id))) is not None:
                    place = places[key] = places.get(key, -1) + 1  # the batch's place of the id: its reason
                    recalled[at + offset] = reasons[min(place, len(reasons) - 1)]
        at += len(txns)
    spans = [(part.batch_id, len(txns)) for part, txns in zip(parts, batches, strict=True)]
    txns = [txn for part_txns in batches for txn in part_txns]
    batches.clear()
    return apply(txns, spans, lambda: [txn for part in parts for txn in transactions_of(part.data)], recalled)


def _answers(counts: list[int], results: list[TxnResult], stats: BatchStats) -> list[Answer]:
    """An answer a part, each with the results of its `counts` transactions, in order."""
    entries, sizes = result_entries(results)
    answers: list[Answer] = []
    start = position = 0
    for count in counts:
        sized = sizes[start:start + count]
        end = position + sum(sized)
        answers.append(_encode(PartAnswer(entries[position:end], sized, stats)))
        stats, start, position = BatchStats({}), start + count, end
    return answers
