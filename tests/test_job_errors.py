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


def test_a_jobs_failure_is_logged_in_patrons_words_and_only_a_defect_with_its_traceback(caplog):
    # a full disk logged a traceback at each of the midnight run's retries (an outside probe)
    import logging

    from actors.job_errors import log_failure
    from engine.errors import StorageFullError

    log, message = logging.getLogger("patron.coordinator"), "the midnight run failed"
    with caplog.at_level("ERROR", logger="patron.coordinator"):
        log_failure(log, message, StorageFullError("the disk is full: mdb_txn_commit: Input/output error"))
        log_failure(log, message, ActorUnavailableError("The actor 28e45bff is unavailable", b"\0" * 16))
        log_failure(log, message, ValueError("a defect"))
    [full, gone, defect] = caplog.records
    assert (full.getMessage(), full.exc_info, full.error) == (
        "the midnight run failed", None, "StorageFullError: the disk is full: mdb_txn_commit: Input/output error")
    assert (gone.exc_info, gone.error) == (None, job_error(ActorUnavailableError("x", b"\0" * 16)))
    assert defect.exc_info is not None
    assert defect.exc_info[0] is ValueError
