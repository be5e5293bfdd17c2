"""Spending through the server gives what replay gives: a seeded stream mixing every kind,
its refunds, rejections and resends, sent over gRPC and replayed from a file."""

import json
import random
from pathlib import Path

import pytest

from cli.replay import ReplayFiles, replay_files
from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_agreement import basic, served

START = "2026-12-01"
COUPONS = ("WELCOME10", "RECHARGE20", "GOLD-WINE", "BIRTHDAY-CAKE", "NO-SUCH")


def _line(rng: random.Random) -> dict:
    return {"sku": rng.choice(["S1", "S2", "W1"]), "category": rng.choice(["grocery", "wine"]),
            "paid_minor": rng.randrange(100, 80_000), "quantity": 1}


def _txn(rng: random.Random, n: int, member: str, at: int, earlier: list[dict]) -> dict:
    kind = rng.choice(["purchase"] * 3 + ["recharge", "payment", "redeem", "redeem", "coupon_issue",
                                          "coupon_use", "refund"])
    txn = {"txn_id": f"t{n}", "member_id": member, "occurred_at_ms": at, "kind": kind}
    if kind == "purchase":
        txn["lines"] = [_line(rng) for _ in range(rng.randrange(1, 4))]
    elif kind in ("recharge", "payment"):
        txn["amount_minor"] = rng.choice([10_000, 50_000, 60_000, 3_000, 25_000])
    elif kind == "redeem":
        txn["points"] = rng.choice([0, 50, 500, 5_000]) if rng.random() < 0.6 else rng.randrange(1, 900)
        txn["amount_minor"] = rng.choice([0, 2_900, 40_000])
        if not txn["points"] and not txn["amount_minor"]:
            txn["points"] = 10
    elif kind == "coupon_issue":
        txn["coupon_id"] = rng.choice(COUPONS)
    elif kind == "coupon_use":
        txn["coupon_code"] = f"{rng.choice(COUPONS)}-{member}-{rng.randrange(1, 3)}"
        txn["amount_minor"] = rng.choice([4_000, 12_000, 30_000])
        txn["lines"] = [_line(rng)]
    else:
        mine = [t["txn_id"] for t in earlier if t["member_id"] == member and t["kind"] != "refund"] or ["none"]
        txn["refund_of"] = rng.choice(mine)
        txn["amount_minor"] = rng.choice([0, 0, 1_000, 30_000])
        if txn["refund_of"] == "none":
            txn["amount_minor"] = 500
    return txn


def spending_stream(seed: int = 11, count: int = 600) -> list[dict]:
    rng = random.Random(seed)
    members = [f"m{i}" for i in range(12)]
    at, txns = ms(f"{START} 09:00"), []
    for n in range(count):
        at += rng.randrange(0, 12 * 60_000)
        txns.append(_txn(rng, n, rng.choice(members), at, txns))
        if rng.random() < 0.05:
            txns.append(dict(txns[-1]))  # resent as it was: a duplicate
    return txns


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def replayed(tmp_path: Path, txns: list[dict]) -> tuple[list[tuple], list[dict], list[dict]]:
    stream = tmp_path / "spending.jsonl"
    stream.write_text("".join(json.dumps(t) + "\n" for t in txns))
    out = {name: tmp_path / f"{name}.jsonl" for name in ("members", "results", "ledger")}
    replay_files(ReplayFiles(rules=EXAMPLE_RULES, transactions=stream, members_out=out["members"],
                             results_out=out["results"], ledger_out=out["ledger"]))
    results = [(r["txn_id"], r["outcome"], r["points"], r["growth"], r["reason"], r["value_minor"],
                r["coupon_code"]) for r in _jsonl(out["results"])]
    return results, _jsonl(out["members"]), _jsonl(out["ledger"])


def with_spending(result) -> tuple:
    return (*basic(result), result.value_minor, result.coupon_code)


@pytest.mark.parametrize("shards", [1, 2])
def test_a_mixed_spending_stream_through_the_server_equals_replay(start_server, tmp_path, shards):
    txns = spending_stream()
    expected, members, ledger = replayed(tmp_path, txns)
    kinds = {(t["kind"], r[1]) for t, r in zip(txns, expected, strict=True)}
    for kind in ("redeem", "payment", "coupon_issue", "coupon_use", "refund", "recharge"):
        assert (kind, "accepted") in kinds, kind  # the stream really exercises every kind
    server = start_server(shards=shards, start_date=parse_day(START))
    with PatronClient(server.address) as client:
        assert served(client, txns, 50, 4, START, with_spending) == expected
        for member in members:
            got = client.member(member["member_id"])
            assert (got.tier, got.points, got.available_points, got.stored_value, got.bonus_value_minor,
                    list(got.tags)) == (member["tier"], member["points"], member["available_points"],
                                        member.get("stored_value", 0), member["bonus_value"], member["tags"])
            assert [{"code": c.code, "coupon_id": c.coupon_id, "status": c.status, "valid_from": c.valid_from,
                     "valid_to": c.valid_to} for c in got.coupons] == member["coupons"]
            served_ledger = [(e.seq, e.day, e.kind, e.points, e.stored_value, e.bonus_value, e.coupon_code,
                              [{"expires": lot.expires, "points": lot.points} for lot in e.lots])
                             for e in client.ledger(member["member_id"])]
            assert served_ledger == [(e["seq"], e["day"], e["kind"], e.get("points", 0), e.get("stored_value", 0),
                                      e.get("bonus_value", 0), e.get("coupon_code", ""), e.get("lots", []))
                                     for e in ledger if e["member_id"] == member["member_id"]]


def test_concurrent_issuance_on_several_shards_never_oversells_a_coupon(start_server, tmp_path):
    import threading

    rules = tmp_path / "rules.toml"
    rules.write_text(EXAMPLE_RULES.read_text() + '\n[[coupons]]\nid = "LIMITED"\nkind = "voucher"\n'
                     'value_minor = 500\ninventory = 50\nvalid_after_days = 0\nvalid_days = 30\n')
    server = start_server(shards=2, rules=rules, start_date=parse_day(START))
    members = [f"c{n}" for n in range(120)]
    at = ms(f"{START} 10:00")
    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": member} for member in members])
    answers: list = []

    def issue(part: int) -> None:
        with PatronClient(server.address) as client:
            for start in range(part * 5, len(members) * 2, 20):  # every member asked twice, in waves
                wave = [{"txn_id": f"i{n}", "member_id": members[n % len(members)], "occurred_at_ms": at,
                         "kind": "coupon_issue", "coupon_id": "LIMITED"} for n in range(start, start + 5)]
                answers.extend(client.submit(wave).results)

    threads = [threading.Thread(target=issue, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 2 * len(members)
    issued = [a for a in answers if a.outcome == 1]
    assert {a.reason for a in answers if a.outcome != 1} == {"out_of_stock"}
    assert len(issued) == 50  # each shard issued its share, and no more
    with PatronClient(server.address) as client:
        held = sum(1 for member in members for c in client.member(member).coupons if c.coupon_id == "LIMITED")
    assert held == 50
