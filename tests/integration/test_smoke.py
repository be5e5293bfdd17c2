from client import PatronClient
from tests.builders import ms


def test_a_batch_is_scored_and_acknowledged(start_server):
    server = start_server(shards=2)
    with PatronClient(server.address) as client:
        client.wait_until_serving()
        ack = client.submit([{"txn_id": "t1", "member_id": "m1", "occurred_at_ms": ms("2026-11-18 10:00"),
                              "kind": "purchase", "lines": [{"sku": "A", "paid_minor": 2900}]}])
        assert [(r.txn_id, r.points) for r in ack.results] == [("t1", 20)]
        assert client.member("m1").points == 20
