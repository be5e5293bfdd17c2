"""Wallet.Quote and Wallet.ListCoupons on a real two-shard server with the example rules: the quote
is what the till's transactions then do, it changes nothing, bad requests get a clear status
(never INTERNAL), and a quote answered while batches pour in sees only committed states."""

import json
import subprocess
import sys
import threading
import tomllib

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client import PatronClient
from engine.calendar import iso, parse_day
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES, TEST_DAY

AT = ms(f"{TEST_DAY} 10:00")  # the pinned business day, a Tuesday: no multiplier but Gold's
TODAY = parse_day(TEST_DAY)
WELCOME = (iso(TODAY + 1), iso(TODAY + 30))  # the example's WELCOME10: from the day after issue, 30 days
RECHARGE = (iso(TODAY), iso(TODAY + 89))  # RECHARGE20: from the day of issue, 90 days
GOLD_WINE = next((c["valid_from"], c["valid_to"]) for c in tomllib.loads(EXAMPLE_RULES.read_text())["coupons"]
                 if c["id"] == "GOLD-WINE")  # fixed validity, as the example rules give it
BASKET = [{"sku": "W-1", "category": "wine", "paid_minor": 20000, "quantity": 2},
          {"sku": "F-1", "category": "infant_formula", "paid_minor": 15000},
          {"sku": "B-1", "category": "bakery", "paid_minor": 3990}]


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "wallet")


def txn(txn_id: str, member: str, kind: str, **fields) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": AT, "kind": kind, **fields}


def gold_member(client: PatronClient, member: str) -> None:
    """Enrolled (the welcome coupon), Gold by 10,000.00 of spend (the Gold wine coupon), some
    stored value, a recharge coupon and points to pay with."""
    client.enroll(member, channel="pos")
    ack = client.submit([txn(f"{member}-big", member, "purchase", lines=[{"sku": "TV", "paid_minor": 1_000_000}]),
                         txn(f"{member}-r", member, "recharge", amount_minor=50_000),
                         txn(f"{member}-c", member, "coupon_issue", coupon_id="RECHARGE20")])
    assert [r.outcome for r in ack.results] == [pb.OUTCOME_ACCEPTED] * 3
    client.adjust(member, 50_000, "points to pay with")
    assert client.member(member).tier == "Gold"


def test_a_quote_is_what_the_tills_transactions_then_do_and_changes_nothing(server):
    with PatronClient(server.address) as client:
        gold_member(client, "Q1")
        before = (client.member("Q1"), [e.seq for e in client.ledger("Q1")])
        quote = client.quote("Q1", BASKET, occurred_at_ms=AT)
        assert (client.member("Q1"), [e.seq for e in client.ledger("Q1")]) == before
        assert (quote.tier, quote.day) == ("Gold", TEST_DAY)
        assert [(q.price_minor, q.line.paid_minor, q.line.member_discounted) for q in quote.lines] == [
            (20000, 18000, True), (15000, 15000, False), (3990, 3591, True)]  # Gold pays 90 %, never on formula
        assert (quote.total_minor, quote.member_total_minor) == (38990, 36591)
        member = before[0]
        assert (quote.available_points, quote.stored_value, quote.bonus_value_minor) == (
            member.available_points, member.stored_value, member.bonus_value_minor)
        # 100 points a yuan, at most half the order: 182 units of the 365.91 at member prices
        assert (quote.cash_points, quote.cash_value_minor, quote.cash_reason) == (18200, 18200, "")
        assert [(c.coupon.instance.code, c.value_minor) for c in quote.coupons] == [("RECHARGE20-Q1-1", 2000)]
        assert {(c.coupon.instance.coupon_id, c.reason) for c in quote.unusable_coupons} == {
            ("WELCOME10", "coupon_not_yet_valid"), ("GOLD-WINE", "coupon_not_yet_valid")}

        sent = [{"sku": q.line.sku, "category": q.line.category, "paid_minor": q.line.paid_minor,
                 "quantity": q.line.quantity, "member_discounted": q.line.member_discounted} for q in quote.lines]
        ack = client.submit([txn("Q1-redeem", "Q1", "redeem", amount_minor=quote.member_total_minor),
                             txn("Q1-coupon", "Q1", "coupon_use", coupon_code="RECHARGE20-Q1-1",
                                 amount_minor=quote.member_total_minor, lines=sent),
                             txn("Q1-buy", "Q1", "purchase", lines=sent)])
        redeem, coupon, purchase = ack.results
        assert (-redeem.points, redeem.value_minor) == (quote.cash_points, quote.cash_value_minor)
        assert coupon.value_minor == quote.coupons[0].value_minor
        assert (purchase.points, purchase.growth, purchase.reason) == (quote.points, quote.growth,
                                                                       quote.points_reason)
        assert quote.points > 0


def test_a_quote_without_a_time_is_for_now_on_the_business_day(server):
    with PatronClient(server.address) as client:
        client.enroll("Q2")
        quote = client.quote("Q2", [{"sku": "B-1", "paid_minor": 2900}])
    assert (quote.day, quote.tier, quote.points, quote.member_total_minor) == (TEST_DAY, "Basic", 20, 2900)


def test_list_coupons_gives_each_instance_with_its_terms_and_filters_by_status(server):
    with PatronClient(server.address) as client:
        gold_member(client, "Q3")
        client.submit([txn("Q3-use", "Q3", "coupon_use", coupon_code="RECHARGE20-Q3-1", amount_minor=30000)])
        held = client.coupons("Q3")
        assert [(h.instance.code, h.instance.status, h.kind) for h in held] == [
            ("GOLD-WINE-Q3-1", "unused", "discount"), ("RECHARGE20-Q3-1", "used", "voucher"),
            ("WELCOME10-Q3-1", "unused", "voucher")]
        wine, recharge, welcome = held
        assert (wine.percent, wine.designated, wine.instance.valid_from, wine.instance.valid_to) == (
            80, True, *GOLD_WINE)
        assert (recharge.value_minor, recharge.min_charge_minor) == (2000, 10000)
        assert welcome.instance.valid_from == WELCOME[0]  # the day after enrollment
        assert [h.instance.code for h in client.coupons("Q3", "used")] == ["RECHARGE20-Q3-1"]
        assert client.coupons("Q3", "void") == []


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details()


@pytest.mark.parametrize(("member", "lines", "at", "code", "words"), [
    ("nobody", BASKET, AT, grpc.StatusCode.NOT_FOUND, "unknown member 'nobody'"),
    ("", BASKET, AT, grpc.StatusCode.INVALID_ARGUMENT, "member_id"),
    ("Q2", [], AT, grpc.StatusCode.INVALID_ARGUMENT, "lines:"),
    ("Q2", [{"sku": "S", "paid_minor": -5}], AT, grpc.StatusCode.INVALID_ARGUMENT, "lines[0].paid_minor"),
    ("Q2", [{"sku": "S", "paid_minor": 2**62}], AT, grpc.StatusCode.INVALID_ARGUMENT, "lines[0].paid_minor"),
    ("Q2", [{"sku": "S", "paid_minor": 10**15}] * 2, AT, grpc.StatusCode.INVALID_ARGUMENT, "above 10^15"),
    ("Q2", BASKET, -1, grpc.StatusCode.INVALID_ARGUMENT, "occurred_at_ms"),
    ("Q2", BASKET, ms(f"{iso(TODAY - 60)} 10:00"), grpc.StatusCode.INVALID_ARGUMENT, "too_late"),
    ("Q2", [{"sku": "S", "paid_minor": 1}] * 10_001, AT, grpc.StatusCode.INVALID_ARGUMENT,
     "lines: 10,001 in one quote; the limit is 10,000"),
])
def test_a_bad_quote_request_gets_a_clear_status(server, member, lines, at, code, words):
    with PatronClient(server.address, retries=0) as client:
        client.enroll("Q2")
        got, details = code_of(lambda: client.quote(member, lines, occurred_at_ms=at))
    assert got == code
    assert words in details


def test_bad_coupon_listings_get_a_clear_status(server):
    with PatronClient(server.address, retries=0) as client:
        assert code_of(lambda: client.coupons("nobody"))[0] == grpc.StatusCode.NOT_FOUND
        code, details = code_of(lambda: client.coupons("Q2", "lost"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "status: expected one of unused, used, expired, void" in details


lines = st.builds(pb.LineItem, sku=st.text(max_size=6), category=st.sampled_from(["", "wine", "infant_formula"]),
                  paid_minor=st.integers(-(2**63), 2**63 - 1), quantity=st.integers(-(2**31), 2**31 - 1),
                  member_discounted=st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(["Q2", "", "nobody", "x" * 101]), basket=st.lists(lines, max_size=4),
       at=st.one_of(st.just(0), st.just(AT), st.integers(-(2**63), 2**63 - 1)))
def test_no_quote_request_is_answered_internal(server, member, basket, at):
    with PatronClient(server.address, retries=0) as client:
        try:
            client.quote(member, basket, occurred_at_ms=at)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}


def test_quotes_answered_during_heavy_ingestion_see_only_committed_states(server):
    """Every batch gives Q4 +3 points first and -1 last: a committed state has an even count of
    +2 steps; anything else would be a batch seen half applied (a read of the members while the
    shard scores one). Quotes never go back, and see at least what was acknowledged before
    they were asked."""
    batches, size = 80, 1000
    with PatronClient(server.address) as client:
        client.enroll("Q4")
        base = client.member("Q4").points
    acknowledged = [0]
    ingesting = threading.Event()

    def stream() -> list:
        for n in range(batches):
            rows = [txn(f"L{n}-{i}", f"load-{(n * size + i) % 4000}", "purchase",
                        lines=[{"sku": "S", "paid_minor": 1000 + i}]) for i in range(size - 2)]
            yield [txn(f"Q4-{n}-up", "Q4", "adjustment", amount_minor=3, note="load"), *rows,
                   txn(f"Q4-{n}-down", "Q4", "adjustment", amount_minor=-1, note="load")]

    def ingest() -> None:
        with PatronClient(server.address) as loader:
            ingesting.set()
            for ack in loader.stream((loader.batch(rows) for rows in stream()), window=8):
                assert ack.results[0].outcome == ack.results[-1].outcome == pb.OUTCOME_ACCEPTED
                acknowledged[0] += 1

    loader = threading.Thread(target=ingest)
    loader.start()
    ingesting.wait(30)
    seen, during = [], 0
    with PatronClient(server.address) as client:
        while loader.is_alive() or not seen:
            floor = acknowledged[0]
            quote = client.quote("Q4", [{"sku": "B-1", "paid_minor": 2900}])
            steps, odd = divmod(quote.available_points - base, 2)
            assert odd == 0, quote.available_points  # never half a batch
            assert floor <= steps <= batches
            assert quote.points == 20  # the basket earns what it earns whatever else goes on
            seen.append(steps)
            during += loader.is_alive()
        loader.join(300)
    assert seen == sorted(seen)
    assert during >= 3  # the quotes really were answered while batches poured in
    assert acknowledged[0] == batches
    with PatronClient(server.address) as client:
        assert client.member("Q4").points == base + 2 * batches
        kinds = [e.kind for e in client.ledger("Q4")]
    assert kinds == ["coupon_issued"] + ["adjust"] * (2 * batches)  # the welcome coupon; quotes wrote nothing


def patron(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_patron_member_quote_and_coupons_for_people_and_machines(server, tmp_path):
    with PatronClient(server.address) as client:
        gold_member(client, "Q5")
        expected = client.quote("Q5", BASKET)
    basket = tmp_path / "basket.json"
    basket.write_text(json.dumps({"lines": BASKET}))
    done = patron("member", "quote", "Q5", "--basket", str(basket), "--json", "--address", server.address)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == MessageToDict(expected, preserving_proto_field_name=True)
    words = [f"{line['sku']}:{line.get('quantity', 0)}:{line['paid_minor']}:{line['category']}" for line in BASKET]
    done = patron("member", "quote", "Q5", *(f"--line={w}" for w in words), "--address", server.address)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[:4] == ["#  sku  qty   price  member price",
                       "1  W-1    2  200.00        180.00",
                       "2  F-1    1  150.00        150.00",
                       "3  B-1    1   39.90         35.91"]
    assert "total           389.90, at member prices 365.91" in out
    assert f"earns           {expected.points} points, {expected.growth} growth" in out
    assert "points as cash  18,200 points for 182.00 off; 60,000 points available" in out
    assert out[-4:] == ["stored value    510.00 (principal 500.00, bonus 10.00)",
                        "coupon          RECHARGE20-Q5-1: 20.00 off",
                        "not usable      GOLD-WINE-Q5-1 (coupon_not_yet_valid)",
                        "not usable      WELCOME10-Q5-1 (coupon_not_yet_valid)"]
    done = patron("member", "coupons", "Q5", "--status", "unused", "--address", server.address)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "code             status  valid                     gives",
        f"GOLD-WINE-Q5-1   unused  {GOLD_WINE[0]} .. {GOLD_WINE[1]}  pay 80 % of designated lines",
        f"RECHARGE20-Q5-1  unused  {RECHARGE[0]} .. {RECHARGE[1]}  20.00 off, from 100.00",
        f"WELCOME10-Q5-1   unused  {WELCOME[0]} .. {WELCOME[1]}  10.00 off, from 50.00"]
    done = patron("member", "quote", "nobody", "--line", "S:1:100", "--address", server.address)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "patron: NOT_FOUND: unknown member 'nobody'\n")


def test_a_batch_resent_with_its_id_gets_its_first_answers_again(server):
    # its rejected redeem, scored again after the next batch had added points, was accepted
    with PatronClient(server.address) as client:
        first = client.batch([txn("RS-1", "RS", "purchase", amount_minor=1_000),
                              txn("RS-2", "RS", "redeem", points=500)])
        answered = [(r.outcome, r.reason) for r in client.submit(first).results]
        assert answered == [(pb.OUTCOME_ACCEPTED, ""), (pb.OUTCOME_REJECTED, "insufficient_points")]
        client.submit([txn("RS-3", "RS", "purchase", amount_minor=100_000)])
        points = client.member("RS").points
        again = [(r.outcome, r.reason) for r in client.submit(first).results]  # the same batch id
        assert again == [(pb.OUTCOME_DUPLICATE, ""), (pb.OUTCOME_REJECTED, "insufficient_points")]
        assert client.member("RS").points == points
        sent_anew = client.submit([txn("RS-2", "RS", "redeem", points=500)]).results[0]  # SPEC §11.1
        assert (sent_anew.outcome, sent_anew.points) == (pb.OUTCOME_ACCEPTED, -500)
