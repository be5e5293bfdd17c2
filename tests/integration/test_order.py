"""Order per member across failures, without any fault: once a stream's batch fails on a shard,
nothing later from that stream is applied there until the client has resent it."""

import gc

import grpc
import pytest

from client import PatronClient
from engine.calendar import parse_day
from proto import patron_pb2 as pb
from tests.builders import ms

AT = ms("2026-11-17 10:00")
REFUNDED = 3


def purchases(count: int) -> list[dict]:
    return [{"txn_id": f"p{n}", "member_id": f"m{n}", "occurred_at_ms": AT, "kind": "purchase",
             "lines": [{"sku": "A", "paid_minor": 2900}]} for n in range(count)]


def full_refund(n: int) -> list[dict]:
    return [{"txn_id": f"r{n}", "member_id": f"m{n}", "occurred_at_ms": AT + 1, "kind": "refund",
             "refund_of": f"p{n}", "amount_minor": 2900}]


@pytest.mark.parametrize("in_flight", [1, 2])
def test_batches_behind_one_that_failed_on_a_shard_wait_for_its_resend(start_server, tmp_path, in_flight, caplog):
    """Batch 0 (purchases) cannot be committed: the shard's map is at its ceiling. Batches 1-3
    (full refunds of three of them) would fit, and were already sent on the same stream: they
    must not be applied before batch 0 (as refunds of an unknown original)."""
    data = tmp_path / "data"
    small = start_server(data=data, shards=1, map_bytes=256 << 10, max_map_bytes=512 << 10,
                         in_flight_per_shard=in_flight, start_date=parse_day("2026-11-17"))
    with PatronClient(small.address, retries=0) as client:
        batches = [client.batch(purchases(4_000), "purchases")]
        batches += [client.batch(full_refund(n), f"refund-{n}") for n in range(REFUNDED)]
        with pytest.raises(grpc.RpcError) as refused:
            list(client.stream(batches, window=8))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert [client.member(f"m{n}") for n in range(REFUNDED)] == [None] * REFUNDED  # no refund overtook
    small.stop()
    gc.collect()  # the refunds' outcomes the ended stream never answered are freed by now
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []

    roomy = start_server(data=data, shards=1, start_date=parse_day("2026-11-17"))
    with PatronClient(roomy.address, retries=0) as client:
        acks = list(client.stream(batches, window=8))  # resent in order
        refunds = [ack.results[0] for ack in acks[1:]]
        assert [(r.outcome, r.reason, r.points) for r in refunds] == [(pb.OUTCOME_ACCEPTED, "", -20)] * REFUNDED
        assert [(m.points, m.growth) for m in map(client.member, [f"m{n}" for n in range(REFUNDED)])] == [
            (0, 0)] * REFUNDED
