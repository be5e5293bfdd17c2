"""A limited coupon's inventory on a real multi-shard server: the grant keeper hands it out in
blocks, so demand on one shard can take all of it, and units idle in another shard's block go
to the shard that still issues once the inventory runs short."""

import time
from pathlib import Path

import ray

from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES, restored

START = "2026-12-01"


def limited_rules(tmp_path: Path, inventory: int) -> Path:
    rules = tmp_path / "rules.toml"
    rules.write_text(EXAMPLE_RULES.read_text() + '\n[[coupons]]\nid = "LIMITED"\nkind = "voucher"\n'
                     f'value_minor = 500\ninventory = {inventory}\nvalid_after_days = 0\nvalid_days = 30\n')
    return rules


def issues(prefix: str, member: str, count: int) -> list[dict]:
    at = ms(f"{START} 10:00")
    return [{"txn_id": f"{prefix}-{n}", "member_id": member, "occurred_at_ms": at, "kind": "coupon_issue",
             "coupon_id": "LIMITED"} for n in range(count)]


def member_on(server, shard: int) -> str:
    return next(m for m in (f"c{n}" for n in range(1000)) if server.server.coordinator.shard_for(m) == shard)


def issued(answers) -> int:
    return sum(1 for a in answers if a.outcome == 1 and a.coupon_code)


def held(client: PatronClient, member: str) -> list[str]:
    return [c.code for c in client.member(member).coupons if c.coupon_id == "LIMITED"]


def test_demand_on_one_shard_takes_the_whole_inventory(start_server, tmp_path):
    server = start_server(shards=2, rules=limited_rules(tmp_path, 100), start_date=parse_day(START))
    member = member_on(server, 0)
    with PatronClient(server.address) as client:
        client.enroll(member)
        answers = [a for wave in range(6) for a in client.submit(issues(f"w{wave}", member, 20)).results]
        assert issued(answers) == 100
        assert [a.reason for a in answers[100:]] == ["out_of_stock"] * 20
        assert len(set(held(client, member))) == 100
    grants = ray.get(server.server.coordinator.keeper.state.remote())["LIMITED"]
    assert grants == {0: 100}  # the other shard was never given any
    assert server.server.metrics.coupons["out_of_stock"].labels("LIMITED")._value.get() == 20


def test_units_idle_in_another_shards_block_go_to_the_shard_that_still_issues(start_server, tmp_path):
    server = start_server(shards=2, rules=limited_rules(tmp_path, 1000), start_date=parse_day(START))
    busy, idle = member_on(server, 0), member_on(server, 1)
    keeper = server.server.coordinator.keeper
    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": busy}, {"member_id": idle}])
        assert issued(client.submit(issues("first", idle, 10)).results) == 10
        assert ray.get(keeper.state.remote())["LIMITED"][1] > 10  # a block, most of it unused
        total, wave, deadline = 10, 0, time.monotonic() + 60
        while total < 1000 and time.monotonic() < deadline:
            answers = client.submit(issues(f"w{wave}", busy, 100)).results
            total, wave = total + issued(answers), wave + 1
            if any(a.reason == "out_of_stock" for a in answers):
                time.sleep(0.3)  # the coordinator asks shards for idle units about once a second
        assert total == 1000
        assert ray.get(keeper.state.remote())["LIMITED"] == {0: 990, 1: 10}
        assert [a.reason for a in client.submit(issues("last", idle, 1)).results] == ["out_of_stock"]
        assert len(held(client, busy)) + len(held(client, idle)) == 1000


def test_a_new_inventory_counts_what_was_issued(start_server, tmp_path):
    rules = limited_rules(tmp_path, 30)
    server = start_server(shards=2, rules=rules, start_date=parse_day(START))
    members = [member_on(server, 0), member_on(server, 1)]

    def issue_everywhere(prefix: str) -> int:
        return sum(issued(client.submit(issues(f"{prefix}{m}", m, 25)).results) for m in members)

    def publish(version: int, inventory: int) -> None:
        text = rules.read_text().replace("version = 1", f"version = {version}", 1)
        client.publish_rules(text.replace("inventory = 30", f"inventory = {inventory}"))

    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": member} for member in members])
        assert issue_everywhere("a") == 30
        publish(2, 45)  # more: the 15 added can be issued, and no more
        assert issue_everywhere("b") == 15
        publish(3, 20)  # less than was issued: out of stock, and what was issued stays
        assert issue_everywhere("c") == 0
        assert sum(len(held(client, member)) for member in members) == 45
    grants = ray.get(server.server.coordinator.keeper.state.remote())["LIMITED"]
    assert sum(grants.values()) == 45


def test_after_a_restore_the_units_the_restore_took_back_are_any_shards_to_issue(start_server, tmp_path):
    # the keeper kept its grants (DATA/stock is not in checkpoints): a shard that had issued after
    # the checkpoint kept units no instance used, and another shard's issue was refused out_of_stock
    data, rules = tmp_path / "data", limited_rules(tmp_path, 6)
    server = start_server(data=data, shards=2, rules=rules, start_date=parse_day(START))
    first, second = member_on(server, 0), member_on(server, 1)
    with PatronClient(server.address) as client:
        client.enroll(first)
        client.enroll(second)
        assert issued(client.submit(issues("a", first, 3)).results) == 3
        made = client.checkpoint()
        assert issued(client.submit(issues("b", second, 3)).results) == 3  # the whole inventory
    again = restored(server, start_server, made.name, rules=rules)
    with PatronClient(again.address) as client:
        answers = client.submit(issues("c", first, 4)).results  # at once: no refusal needed to free them
        assert [a.reason for a in answers] == ["", "", "", "out_of_stock"]
        assert len(held(client, first)) == 6
