"""The midnight run through `serve` with RunMidnight, and checkpoints restored member for member."""

import pytest

from cli.main import main
from client import PatronClient
from engine.calendar import parse_day
from tests.builders import HEADER, ms, shopline_tiers
from tests.conftest import EXAMPLE_RULES, LONG_RUN

SHOPLINE = HEADER + shopline_tiers()


def purchase(txn_id: str, member: str, when: str, paid: int) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(when), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}]}


@pytest.mark.parametrize("shards", [1, 2])
def test_the_shopline_anniversary_walks_members_down_through_serve(start_server, tmp_path, shards):
    rules = tmp_path / "shopline.toml"
    rules.write_text(SHOPLINE)
    server = start_server(rules=rules, shards=shards, start_date=parse_day("2023-04-15"))
    with PatronClient(server.address) as client:
        client.submit([purchase("a1", "A", "2023-04-15 10:00", 100000),
                       purchase("b1", "B", "2023-04-15 11:00", 100000)])
        assert (client.member("A").tier, client.member("A").tier_valid_until) == ("Silver", "2024-04-14")
        client.run_midnight("2024-03-01", allow_future=True, timeout=LONG_RUN)
        client.submit([purchase("a2", "A", "2024-03-01 10:00", 90000), purchase("b2", "B", "2024-03-01 10:00", 40000)])
        client.run_midnight("2024-04-14", allow_future=True, timeout=LONG_RUN)
        assert (client.member("A").tier, client.member("B").tier) == ("Silver", "Silver")
        client.run_midnight("2024-04-15", allow_future=True)
        assert (client.member("A").tier, client.member("B").tier) == ("Bronze", "Regular")
        assert client.member("A").tier_valid_until == "2025-04-14"
        assert [(e.cause, e.ref, e.tier_from, e.tier_to) for e in client.ledger("A") if e.kind == "tier"][-1] == (
            "midnight", "2024-04-15", "Silver", "Bronze")


def test_points_expire_at_the_start_of_1_january_through_serve(start_server):
    # late in the year: a year of dates, not two; one shard, as the one member needs (a second, empty,
    # ran each date too)
    server = start_server(shards=1, start_date=parse_day("2026-12-30"), allow_future=True)  # ahead through 28 Dec
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m", "2026-12-30 10:00", 2900)])
        client.run_midnight("2027-12-31", allow_future=True, timeout=LONG_RUN)
        assert client.member("m").points == 20
        client.run_midnight("2028-01-01", allow_future=True)
        assert client.member("m").points == 0


def test_a_restored_checkpoint_brings_back_every_member(start_server, tmp_path, capsys):
    data = tmp_path / "data"
    server = start_server(data=data, shards=2, start_date=parse_day("2026-11-17"))
    txns = [purchase(f"t{n}", f"m{n % 40}", "2026-11-17 10:00", 1000 + 37 * n) for n in range(300)]
    with PatronClient(server.address) as client:
        client.submit(txns[:200])
        made = client.checkpoint()
        before = {f"m{n}": client.member(f"m{n}") for n in range(40)}
        data_id = client.status().data_id
        client.submit(txns[200:])
        assert client.member("m1").points != before["m1"].points
    server.stop()
    from storage.vshard_move import RebalanceNote, write_rebalance_note

    write_rebalance_note(data, RebalanceNote(3, 300))  # one cut short, of a layout the restore takes back
    with pytest.raises(SystemExit) as done:
        main(["restore", "--data", str(data), "--checkpoint", made.name])
    assert done.value.code == 0
    assert f"restored {data} to checkpoint {made.name}" in capsys.readouterr().out
    again = start_server(data=data, rules=EXAMPLE_RULES)
    with PatronClient(again.address) as client:
        for member_id, member in before.items():
            assert client.member(member_id) == member
        assert client.status().data_id not in ("", data_id)  # what clients recorded since is not vouched for
        assert not client.status().resharding.error


END_OF_MONTH = SHOPLINE.replace('validity = "12 months"\nextension', 'validity = "6 months end_of_month"\nextension')
ONE_POINT_PER_YUAN = SHOPLINE + "\n[points.spend]\nunit_minor = 100\nper_unit = 1\n"
ROLLING = ONE_POINT_PER_YUAN + '[points.expiry]\npolicy = "rolling_days"\ndays = 30\n'
ANNUAL_RESET = ONE_POINT_PER_YUAN + '[points.expiry]\npolicy = "annual_reset"\n'


@pytest.mark.parametrize(("rules_text", "start", "steps"), [
    # 10 Mar + 6 months to the end of the month: valid through 30 Sep, Regular from 1 Oct
    (END_OF_MONTH, "2026-03-10", [("2026-09-30", "tier", "Silver"), ("2026-10-01", "tier", "Regular")]),
    # points earned 1 Mar expire after 30 rolling days, at 00:00 of 31 Mar
    (ROLLING, "2026-03-01", [("2026-03-30", "points", 1000), ("2026-03-31", "points", 0)]),
    # annual reset clears every balance on 1 January
    (ANNUAL_RESET, "2026-12-01", [("2026-12-31", "points", 1000), ("2027-01-01", "points", 0)]),
])
def test_date_rules_through_serve(start_server, tmp_path, rules_text, start, steps):
    rules = tmp_path / "rules.toml"
    rules.write_text(rules_text)
    server = start_server(rules=rules, shards=1, start_date=parse_day(start))  # one member: one shard
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m", f"{start} 10:00", 100000)])
        for date, field, expected in steps:
            client.run_midnight(date, allow_future=True, timeout=LONG_RUN)
            assert getattr(client.member("m"), field) == expected, date
