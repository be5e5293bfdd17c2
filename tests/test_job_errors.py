"""A long job's failure as GetStatus tells it: a probe read Ray's "ActorUnavailableError: The
actor 28e45bff... is unavailable: ... recvmsg:Connection reset by peer rpc_code: 14"."""

from ray.exceptions import ActorUnavailableError

from actors.job_errors import job_error
from engine.errors import ReshardBusyError


def test_a_shards_death_is_said_in_words_and_patrons_own_errors_as_they_are():
    died = ActorUnavailableError("The actor 28e45bff is unavailable: recvmsg:Connection reset by peer", b"\0" * 16)
    told = job_error(died)
    assert told.startswith("a shard stopped answering during it")
    assert "28e45bff" not in told
    assert "recvmsg" not in told
    assert job_error(ReshardBusyError("the move was undone")) == "ReshardBusyError: the move was undone"
