"""Tags through the server: computed at the midnight run, set by operators, counted per tag."""

import grpc
import pytest

from client import PatronClient
from engine.calendar import iso, parse_day
from tests.builders import ms
from tests.conftest import LONG_RUN, TEST_DAY


def purchase(txn_id: str, member: str) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(f"{TEST_DAY} 10:00"), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": 2900}]}


def test_members_are_tagged_at_midnight_tagged_by_operators_and_counted(start_server):
    server = start_server(shards=2)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m1"), purchase("t2", "m2"), purchase("t3", "m3")])
        lapsed_on = iso(parse_day(TEST_DAY) + 91)  # the example's "lapsed": no purchase in 90 days
        client.run_midnight(iso(parse_day(lapsed_on) - 1), allow_future=True, timeout=LONG_RUN)  # a test system
        assert list(client.member("m1").tags) == []
        client.run_midnight(lapsed_on, allow_future=True)
        assert list(client.member("m1").tags) == ["lapsed"]
        assert list(client.set_tags("m2", add=["vip", "staff"], reason="store manager").tags) == [
            "lapsed", "staff", "vip"]
        assert list(client.set_tags("m2", remove=["staff"], reason="left").tags) == ["lapsed", "vip"]
        assert dict(client.status().members_per_tag) == {"lapsed": 3, "vip": 1}
        with pytest.raises(grpc.RpcError) as refused:
            client.set_tags("m3", add=["vip"])
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "reason: an operator's change of tags needs a reason one can read (not only spaces or invisible "
            "characters)")
        with pytest.raises(grpc.RpcError) as too_many:
            client.set_tags("m3", add=[f"t{n}" for n in range(65)], reason="campaign")
        assert (too_many.value.code(), too_many.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "add: member 'm3': at most 64 tags per call, got 65; a member holds at most 64 manual tags")
        assert list(client.member("m3").tags) == ["lapsed"]
        with pytest.raises(grpc.RpcError) as unknown:
            client.set_tags("nobody", add=["vip"], reason="why")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
