"""A served test runs on its own business day (tests.conftest.TEST_DAY), never on the real clock."""

from client import PatronClient
from tests.builders import ms
from tests.conftest import TEST_DAY


def test_a_batch_is_scored_and_acknowledged_whatever_the_real_date(start_server):
    server = start_server(shards=2)
    with PatronClient(server.address) as client:
        client.wait_until_serving()
        ack = client.submit([{"txn_id": "t1", "member_id": "m1", "occurred_at_ms": ms(f"{TEST_DAY} 10:00"),
                              "kind": "purchase", "lines": [{"sku": "A", "paid_minor": 2900}]}])
        assert [(r.txn_id, r.outcome, r.points, r.reason) for r in ack.results] == [("t1", 1, 20, "")]
        assert client.member("m1").points == 20
        assert {s.business_day for s in client.status().shards} == {TEST_DAY}
