"""How a long job's failure (a midnight run, a move of virtual shards) is told in GetStatus and
the logs: an operator reads it, so a shard's death is said in words, not as Ray's message (an
actor id and a gRPC transport error)."""

from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors.batch_outcome import original

__all__ = ["job_error"]


def job_error(error: BaseException) -> str:
    error = original(error)  # Ray's wrapper carries the shard's traceback, in colour
    if isinstance(error, ActorDiedError | ActorUnavailableError | RayActorError):
        return f"a shard stopped answering during it (killed, or restarting; Ray's {type(error).__name__})"
    return f"{type(error).__name__}: {error}"
