"""Errors patron raises on purpose, with messages a retailer can act on."""

__all__ = ["InvalidRequestError", "PatronError", "RowRejectedError", "RulesError", "UnknownMemberError"]


class PatronError(Exception):
    """Root of every error patron raises on purpose."""


MOST_PROBLEMS_TOLD = 50
"""A document's first 50 problems are told, then how many more: 800,000 bad entries made an
INVALID_ARGUMENT answer of 76 MB and a validate that printed for minutes (an outside probe)."""


class RulesError(PatronError):
    """Raised when a rules document is invalid; lists every problem with its key path (`problems`,
    every one; `told`, what a retailer is shown)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(self.told))

    @property
    def told(self) -> list[str]:
        more = len(self.problems) - MOST_PROBLEMS_TOLD
        if more <= 0:
            return self.problems
        return [*self.problems[:MOST_PROBLEMS_TOLD], f"… and {more:,} more problem{'s' if more > 1 else ''}"]

    def __reduce__(self) -> tuple:
        """Rebuilt from its problems when it crosses processes (the coordinator raises it to the gateway)."""
        return type(self), (self.problems,)


class UnknownMemberError(PatronError):
    """Raised when an operation names a member the programme does not know."""

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        super().__init__(f"unknown member {member_id!r}")

    def __reduce__(self) -> tuple:
        """Rebuilt from the id when it crosses processes (a shard raises it to the gateway)."""
        return type(self), (self.member_id,)


class InvalidRequestError(PatronError):
    """Raised when an operator request is malformed (bad action, missing reason, bad date)."""


class CardStateError(InvalidRequestError):
    """Raised when an operator's card action does not fit the card as it is (a lost card cannot be
    unfrozen): the request is well formed, the member's state refuses it (FAILED_PRECONDITION, not
    INVALID_ARGUMENT: an outside probe could not tell it from a malformed request)."""


class PublishBusyError(PatronError):
    """Raised when rules are published while the previous publish is still re-evaluating members."""


class PublishUnfinishedError(PatronError):
    """Raised when a published version is in force but a shard did not take it yet (it did not
    answer): the shard is brought to it as soon as it answers; nothing needs to be sent again."""


class ReshardBusyError(PatronError):
    """Raised when virtual shards cannot move now: another move or rebalance is under way, a
    midnight run or re-evaluation is running, or a node gateway did not answer the move's hold."""


class NotYetError(PatronError):
    """Raised when what is asked for is made later: a day's anomaly report, by the midnight run
    that closes the day."""


class StorageFullError(PatronError):
    """Raised when a batch cannot be committed because the disk or the shard's map is full;
    nothing of the batch's part on that shard was applied (other shards' parts may have been)."""


class ShardUnavailableError(PatronError):
    """Raised when a shard is down or restarting; nothing of the call was acknowledged."""


class BatchNotAppliedError(PatronError):
    """Raised when a batch, or some of its parts, was not applied: the message says how many of
    its transactions were committed and why the rest were not. Resending the whole batch is
    safe: what was committed answers `duplicate` with its first results. `cause` is the first
    part's failure; its kind decides the gRPC status."""

    def __init__(self, message: str, cause: Exception) -> None:
        super().__init__(message)
        self.cause = cause


class OutOfOrderError(PatronError):
    """Raised for a stream's batch that a shard did not apply because the stream's previous batch
    there was not committed (it failed, or the shard restarted since): nothing of it was applied;
    send it again after the earlier one, in order."""


class MovedAwayError(PatronError):
    """Raised for a write that reached a shard after its member's virtual shard moved to another
    (the route it took was out of date): nothing of it was applied there; send it again, and the
    gateway routes it to the new owner."""


class CheckpointFailedError(PatronError):
    """Raised when a checkpoint was begun and failed (a shard died while copying): its partial
    copy was removed and nothing was kept. Not `UNAVAILABLE`: a client takes that for a server it
    could not reach and sends the checkpoint again, and the operator never saw the failure (an
    outside probe)."""


class OverloadedError(PatronError):
    """Raised when a shard already has as much work in flight as it may; send again later:
    `retry_after` seconds is when room is likely (0 when not known)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RowRejectedError(PatronError):
    """Raised when one row of an import cannot be imported; `reason` is a machine-readable word
    (`unknown_tier`, `negative_amount`...), the message says what was expected and what came."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)
