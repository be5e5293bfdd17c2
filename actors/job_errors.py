"""How a long job's failure (a midnight run, a move of virtual shards) is told in GetStatus and
the logs: an operator reads it, so a shard's death is said in words, not as Ray's message (an
actor id and a gRPC transport error)."""

import logging

from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors.batch_outcome import original
from engine.errors import PatronError

__all__ = ["job_error", "log_failure"]

_SHARD_GONE = (ActorDiedError, ActorUnavailableError, RayActorError)


def job_error(error: BaseException) -> str:
    error = original(error)  # Ray's wrapper carries the shard's traceback, in colour
    if isinstance(error, _SHARD_GONE):
        return f"a shard stopped answering during it (killed, or restarting; Ray's {type(error).__name__})"
    return f"{type(error).__name__}: {error}"


def log_failure(log: logging.Logger, message: str, error: BaseException) -> None:
    """A job's failure in the log: patron's own errors (a full disk) and a shard gone in one line,
    as GetStatus says them; anything else with its traceback, a defect to report (a full disk
    logged a traceback at each of a midnight run's retries: an outside probe)."""
    if isinstance(original(error), (PatronError, *_SHARD_GONE)):
        log.error(message, extra={"error": job_error(error)})
    else:
        log.error(message, exc_info=error)
