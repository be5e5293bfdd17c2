"""What the answer to a batch says when some of its parts failed: a batch spanning shards may
be committed on some and not on others, and the answer must never claim less than happened."""

import errno

from ray.exceptions import RayError, RayTaskError

from engine.errors import BatchNotAppliedError, StorageFullError

__all__ = ["disk_full", "failed_batch", "original", "root_cause", "storage_full"]

SHOWN_SHARDS = 3
"""Reasons given in full; the status message travels in a header of limited size."""


def failed_batch(batch_id: str, parts: list[tuple[int, int, object]]) -> BatchNotAppliedError:
    """`parts` are (shard, transactions, answer or exception), at least one an exception."""
    total = sum(count for _, count, _ in parts)
    committed = sum(count for _, count, answer in parts if not isinstance(answer, BaseException))
    failures = [(shard, count, original(answer)) for shard, count, answer in parts
                if isinstance(answer, BaseException)]
    reasons = [f"{count:,} {_fate(error)} (shard {shard}: {error})" for shard, count, error in failures[:SHOWN_SHARDS]]
    if len(failures) > SHOWN_SHARDS:
        more = sum(count for _, count, _ in failures[SHOWN_SHARDS:])
        reasons.append(f"{more:,} on {len(failures) - SHOWN_SHARDS} more shards not committed")
    message = (f"batch {batch_id!r}: {committed:,} of its {total:,} transactions committed, " + ", ".join(reasons)
               + "; resending the whole batch is safe: what was committed answers duplicate with its first results")
    return BatchNotAppliedError(message, failures[0][2])


def original(error: BaseException) -> BaseException:
    """What the shard raised, without Ray's wrapper and its traceback in the text."""
    if isinstance(error, RayTaskError) and isinstance(error.cause, Exception):
        return error.cause
    return error


def _fate(error: BaseException) -> str:
    """A shard that raised aborted its write; one that died or did not answer may have
    committed before it did."""
    if isinstance(error, RayError) or not isinstance(error, Exception):
        return "may or may not have been applied"
    return "not applied"


def root_cause(error: BaseException) -> BaseException:
    """What failed, under Ray's wrapper and a batch's (whose first failed part decides)."""
    error = original(error)
    return original(error.cause) if isinstance(error, BatchNotAppliedError) else error


def storage_full(error: BaseException) -> bool:
    """A shard's disk or map full, or the data folder's disk."""
    error = root_cause(error)
    return isinstance(error, StorageFullError) or disk_full(error)


def disk_full(error: BaseException) -> bool:
    """The data folder's disk (or quota) full while the gateway's side wrote a file: a midnight
    run's reports, a checkpoint. The shards' own commits say so as StorageFullError."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
