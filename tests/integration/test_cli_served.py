"""The patron command against a running patron: `send` with lines that are not transactions,
`member show` for people (card and ledger table) and machines (--json), a closed pipe, what
`status` says of each shard's process, an operator's enroll, adjust and card status, a day's
anomalies."""

import json
import os
import re
import subprocess
import sys

import pytest

from client import PatronClient
from engine.calendar import parse_day
from engine.summary import to_json
from proto import patron_pb2 as pb
from tests.builders import HEADER, ms, shopline_tiers
from tests.conftest import EXAMPLE_RULES, LONG_RUN

SHOPLINE = HEADER + shopline_tiers()


def patron(*args: str, token: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATRON_TOKEN": token} if token else None
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


TILL, ADMIN = "ingest-token-0123456789", "admin-token-0123456789"


def purchase(txn_id: str, member: str, when: str, paid: int) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(when), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}]}


def test_send_rejects_lines_that_are_not_transactions_sends_the_rest_and_lists_every_rejection(
        start_server, tmp_path):
    """With a till's token (role `ingest`), as README gives tills and send is their tool."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ingest {TILL}\nadmin {ADMIN}\n")
    server = start_server(start_date=parse_day("2026-03-05"), tokens_file=tokens)
    lines = [json.dumps(purchase("t1", "m1", "2026-03-05 10:00", 2900)),
             "this line is not json",
             json.dumps({**purchase("t2", "m1", "2026-03-05 10:00", 2900), "occurred_at_ms": "soon"}),
             "",
             json.dumps(purchase("t3", "m2", "2026-03-05 11:00", 2900)),
             json.dumps({"txn_id": "t4", "member_id": "m2", "occurred_at_ms": ms("2026-03-05 11:00"),
                         "kind": "refund"}),
             "[1, 2]"]
    source = tmp_path / "t.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = patron("send", "--transactions", str(source), "--address", server.address, token=TILL)
    assert done.returncode == 3, done.stderr  # sent, some rejected: as import says it
    assert done.stderr == ""
    out = done.stdout.splitlines()
    assert out[0].startswith("sent 3 transactions in ")
    assert out[0].endswith("/s), 3 lines not sent; the file's 6 non-blank lines: 2 accepted, 3 rejected (malformed), "
                           "1 rejected (missing_refund_of)")
    assert out[1:] == ["rejected (4):",
                       "  line 2: malformed: JSON is malformed: invalid character (byte 4)",
                       "  line 3 (t2): malformed: Expected `int`, got `str` - at `$.occurred_at_ms`",
                       "  line 6 (t4): missing_refund_of",
                       "  line 7: malformed: Expected `object`, got `array`"]
    with PatronClient(server.address, token=ADMIN) as client:
        assert (client.member("m1").points, client.member("m2").points) == (20, 20)
    # the till may not ask GetStatus for the business day: dated from its clock, and told so
    generated = patron("send", "--generate", "20", "--address", server.address, token=TILL)
    assert generated.stdout.startswith("sent 20 transactions in ")
    # this server's business day is pinned months back: today's are in its future (a generated
    # load exits 0 whatever was rejected: it has rejections by design)
    assert (generated.returncode, generated.stdout.splitlines()[0].endswith(": 20 rejected (in_future)")) == (0, True)
    [note] = generated.stderr.splitlines()
    assert note.startswith("patron: this token may not ask the server for its business day (GetStatus: ")
    assert "today on this machine's clock" in note


@pytest.fixture(scope="module")
def march_server(ray_session, tmp_path_factory):
    """For the tests on the example rules from 2026-03-05 that run no midnight: one server for all
    of them (each names its own members and transactions)."""
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "cli", start_date=parse_day("2026-03-05"))


def test_a_file_sent_again_is_answered_as_it_was_the_first_time_its_rejections_too(march_server, tmp_path):
    # an outside probe: after a crash cut a send short, the file sent again went as new batches,
    # and a redeem refused the first time was scored after the file's later purchase and accepted
    server = march_server
    redeem = {"txn_id": "R2", "member_id": "Z1", "occurred_at_ms": ms("2026-03-05 11:00"), "kind": "redeem",
              "points": 500}
    lines = [purchase("P1", "Z1", "2026-03-05 10:00", 1000), redeem, purchase("P3", "Z1", "2026-03-05 12:00", 100000)]
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first = patron("send", "--transactions", str(source), "--address", server.address, "--batch-size", "2")
    assert first.stdout.splitlines()[1:] == ["rejected (1):", "  line 2 (R2): insufficient_points"], first.stdout
    with PatronClient(server.address) as client:
        points = client.member("Z1").points
    again = patron("send", "--transactions", str(source), "--address", server.address, "--batch-size", "2")
    assert again.stdout.splitlines()[0].endswith(": 2 duplicate, 1 rejected (insufficient_points)"), again.stdout
    with PatronClient(server.address) as client:
        assert client.member("Z1").points == points


def test_send_rejects_what_replay_rejects_with_its_reason_and_sends_the_rest(march_server, tmp_path):
    """A status or kind word patron does not know, and numbers beyond what the wire holds, are
    rejected with the reason replay gives them; they neither earn nor stop the file."""
    server = march_server
    odd = {"member_id": "S4", "occurred_at_ms": ms("2026-03-05 10:00"), "kind": "purchase", "amount_minor": 50000}
    lines = [{**odd, "txn_id": "C1", "status": "canceled"},
             {**odd, "txn_id": "C2", "status": "PAID"},
             {**odd, "txn_id": "C3", "kind": "weird"},
             purchase("t1", "m1", "2026-03-05 10:00", 2900),
             {**odd, "txn_id": "B1", "amount_minor": 99999999999999999999999999},
             {**purchase("B2", "S4", "2026-03-05 10:00", 100), "lines": [{"sku": "A", "quantity": 10 ** 20}]}]
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = patron("send", "--transactions", str(source), "--address", server.address)
    assert done.returncode == 3, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("sent 5 transactions in ")
    assert out[0].endswith(": 1 accepted, 2 rejected (amount_too_large), 1 rejected (unknown_kind), "
                           "2 rejected (unknown_status)")
    assert out[1:] == ["rejected (5):",  # in the file's order, wherever each was rejected
                       "  line 1 (C1): unknown_status", "  line 2 (C2): unknown_status",
                       "  line 3 (C3): unknown_kind", "  line 5 (B1): amount_too_large",
                       "  line 6 (B2): amount_too_large: lines[0].quantity: 100000000000000000000 is beyond 10^15"]
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(purchase("t9", "m1", "2026-03-05 12:00", 2900)) + "\n")
    done = patron("send", "--transactions", str(one), "--address", server.address)
    assert done.stdout.startswith("sent 1 transaction in "), done.stdout
    assert done.returncode == 0, done.stderr  # none rejected
    results = tmp_path / "results.jsonl"
    replayed = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(source), "--members-out",
                      str(tmp_path / "members.jsonl"), "--results-out", str(results))
    assert replayed.returncode == 0, replayed.stderr
    assert {r["txn_id"]: r["reason"] for r in map(json.loads, results.read_text().splitlines())} == {
        "C1": "unknown_status", "C2": "unknown_status", "C3": "unknown_kind", "t1": "", "B1": "amount_too_large",
        "B2": "amount_too_large"}
    with PatronClient(server.address) as client:
        assert (client.member("m1").points, client.member("S4")) == (40, None)


def test_send_lists_a_rejected_transactions_huge_id_shortened(march_server, tmp_path):
    """An id of 5,000,000 characters was printed whole, one line of 5 MB (an outside probe)."""
    source = tmp_path / "huge.jsonl"
    source.write_text(json.dumps(purchase("X" * 5000, "huge-m1", "2026-03-05 10:00", 2900)) + "\n")
    done = patron("send", "--transactions", str(source), "--address", march_server.address)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines()[1:] == ["rejected (1):", f"  line 1 ({'X' * 120}… (5,000 characters)): id_too_long"]


def test_member_show_prints_a_card_and_a_ledger_table_with_tier_names_iso_dates_and_why(start_server, tmp_path):
    rules = tmp_path / "shopline.toml"
    rules.write_text(SHOPLINE)
    # one shard: a year of midnight runs costs half as much, and what is shown does not depend on it
    server = start_server(rules=rules, shards=1, start_date=parse_day("2023-04-15"))
    with PatronClient(server.address) as client:
        client.submit([purchase("a1", "A", "2023-04-15 10:00", 100000)])
        client.run_midnight("2024-04-15", timeout=LONG_RUN)
        entries = client.ledger("A")
    done = patron("member", "show", "A", "--ledger", "--address", server.address)
    assert done.returncode == 0, done.stderr
    card, table = done.stdout.split("\n\n")
    assert card.splitlines() == ["member        A", "tier          Regular", "points        0", "growth        0",
                                 "status        active", "enrolled      2023-04-15"]
    assert table.splitlines() == [
        "#  day         what  points  pending  growth  tier               why",
        "1  2023-04-15  tier                           Regular -> Silver  transaction a1 (rules v1)",
        "2  2024-04-15  tier                           Silver -> Regular  midnight run of 2024-04-15; validity ended "
        "(rules v1)"]
    assert len(entries) == 2


def test_member_show_json_is_the_shape_replay_writes(march_server):
    server = march_server
    with PatronClient(server.address) as client:
        client.submit([purchase("json-t1", "json-m1", "2026-03-05 10:00", 2900)])
    done = patron("member", "show", "json-m1", "--json", "--address", server.address)
    assert done.returncode == 0, done.stderr
    member = json.loads(done.stdout)
    assert member == {"member_id": "json-m1", "tier": "Basic", "points": 20, "growth": 20, "abnormal": False,
                      "status": "active", "available_points": 20, "bonus_value": 0, "tags": [],
                      "coupons": [{"code": "WELCOME10-json-m1-1", "coupon_id": "WELCOME10", "status": "unused",
                                   "valid_from": "2026-03-06", "valid_to": "2026-04-04"}],
                      "enrolled_on": "2026-03-05"}
    done = patron("member", "show", "json-m1", "--ledger", "--json", "--address", server.address)
    document = json.loads(done.stdout)
    assert document["member"] == member
    assert document["ledger"] == [{"member_id": "json-m1", "seq": 1, "day": "2026-03-05", "cause": "txn",
                                   "ref": "json-t1", "rule_version": 1, "kind": "coupon_issued",
                                   "coupon_code": "WELCOME10-json-m1-1"},
                                  {"member_id": "json-m1", "seq": 2, "day": "2026-03-05", "cause": "txn",
                                   "ref": "json-t1", "rule_version": 1, "kind": "earn", "points": 20, "growth": 20,
                                   "why": "20 from 'spend 10 per 10.00'"}]
    assert to_json(document).decode() == done.stdout.strip()
    tagged = patron("member", "tag", "json-m1", "--add", "vip", "--reason", "a test", "--address", server.address)
    assert tagged.returncode == 0, tagged.stderr
    assert json.loads(tagged.stdout) == {**member, "tags": ["vip"]}  # the one form of a member, not a third
    assert tagged.stdout == patron("member", "show", "json-m1", "--json", "--address", server.address).stdout


def test_a_refunds_ledger_entry_names_the_purchase_it_refunds(march_server):
    """Over gRPC, in `member show --ledger` and its --json: `ref` is the refund's own id."""
    address = ["--address", march_server.address]
    refund = {"txn_id": "rf-r1", "member_id": "rf-m1", "occurred_at_ms": ms("2026-03-05 11:00"), "kind": "refund",
              "refund_of": "rf-t2", "amount_minor": 2900}
    with PatronClient(march_server.address) as client:
        client.submit([purchase("rf-t1", "rf-m1", "2026-03-05 10:00", 2900),
                       purchase("rf-t2", "rf-m1", "2026-03-05 10:30", 2900), refund])
        assert [(e.ref, e.kind, e.refund_of) for e in client.ledger("rf-m1") if e.kind in ("earn", "reverse")] == [
            ("rf-t1", "earn", ""), ("rf-t2", "earn", ""), ("rf-r1", "reverse", "rf-t2")]
    table = patron("member", "show", "rf-m1", "--ledger", *address)
    assert table.returncode == 0, table.stderr
    assert "transaction rf-r1; refund of rf-t2" in table.stdout.splitlines()[-1], table.stdout
    shown = patron("member", "show", "rf-m1", "--ledger", "--json", *address)
    assert [e.get("refund_of") for e in json.loads(shown.stdout)["ledger"] if e["kind"] in ("earn", "reverse")] == [
        None, None, "rf-t2"]


def test_a_closed_pipe_is_one_line_not_a_traceback(march_server):
    server = march_server
    with PatronClient(server.address) as client:
        client.submit([purchase(f"pipe-t{n}", "pipe-m1", "2026-03-05 10:00", 2900) for n in range(50)])
    reader = subprocess.Popen([sys.executable, "-m", "cli.main", "member", "show", "pipe-m1", "--ledger", "--address",
                               server.address], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # as `| head` does once it has its lines
    error = reader.stderr.read().decode()
    reader.stderr.close()
    assert reader.wait(timeout=60) != 0
    assert error == "patron: the output was closed before it ended (broken pipe)\n"


def test_status_says_whether_each_shard_gives_way_to_the_gateway_and_uses_huge_pages(march_server):
    server = march_server
    done = patron("status", "--address", server.address)
    assert done.returncode == 0, done.stderr
    shards = json.loads(done.stdout)["shards"]
    assert [shard["shard"] for shard in shards] == list(range(len(shards)))  # 0 too, a default proto3 left out
    assert {shard["priority"] for shard in shards} == {"idle"}  # the tests' Ray runs the default
    assert all(shard["huge_pages"] == "on" or shard["huge_pages"].startswith("off: ") for shard in shards)
    # a script reads every shard alike: 64-bit counts as numbers, the keys in one order (an outside probe)
    assert all(isinstance(shard["members"], int) and isinstance(shard["transactions"], int) for shard in shards)
    assert len({tuple(shard) for shard in shards}) == 1
    assert isinstance(json.loads(done.stdout)["rule_version"], int)


def test_shards_of_names_the_virtual_shard_that_moving_moves_the_member_with(march_server):
    """An operator could not tell which virtual shard a member was in (an outside probe)."""
    server = march_server
    with PatronClient(server.address) as client:
        client.submit([purchase("vs-t1", "vs-m1", "2026-03-05 10:00", 2900)])
        points = client.member("vs-m1").points
    done = patron("shards", "of", "vs-m1", "vs-none", "--address", server.address)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(": virtual shard ")[0] for line in lines] == ["vs-m1", "vs-none"]
    vshard = int(lines[0].rsplit(" ", 1)[1])
    before = [shard["members"] for shard in json.loads(patron("status", "--address", server.address).stdout)["shards"]]
    owner = server.server.coordinator.layout.owners[vshard]
    moved = patron("shards", "move", str(vshard), "--to", str(1 - owner), "--address", server.address)
    assert moved.returncode == 0, moved.stderr
    after = [shard["members"] for shard in json.loads(patron("status", "--address", server.address).stdout)["shards"]]
    assert after[1 - owner] > before[1 - owner]  # the member went with it, and any others of its virtual shard
    assert after[owner] - before[owner] == before[1 - owner] - after[1 - owner]
    with PatronClient(server.address) as client:
        assert client.member("vs-m1").points == points > 0  # the same member, served from the other shard


def test_an_operator_enrolls_credits_freezes_and_unfreezes_a_member_from_the_command(march_server):
    address = ["--address", march_server.address]
    enrolled = patron("member", "enroll", "op-m1", "--channel", "pos", "--birthday", "05-17", *address)
    assert (enrolled.returncode, enrolled.stderr) == (0, "")
    assert {key: json.loads(enrolled.stdout).get(key) for key in ("member_id", "channel", "birthday", "campaign")} == {
        "member_id": "op-m1", "channel": "pos", "birthday": "05-17", "campaign": None}
    again = patron("member", "enroll", "op-m1", "--campaign", "spring", *address)
    assert (again.returncode, again.stderr) == (0, "member op-m1 was enrolled already (before, or by this command's "
                                                   "own retry); the profile fields given were updated\n")
    assert (json.loads(again.stdout)["campaign"], json.loads(again.stdout)["channel"]) == ("spring", "pos")

    credit = ["member", "adjust", "op-m1", "--points", "150", "--reason", "goodwill", "--request-id", "adj-op-1"]
    credited = patron(*credit, *address)
    assert credited.returncode == 0, credited.stderr
    assert json.loads(credited.stdout)["points"] == 150
    resent = patron(*credit, *address)  # the operator's answer was lost: the same id applies nothing more
    assert resent.stderr == ("adjustment adj-op-1 was applied once already, by an earlier send of this id (perhaps "
                             "this command's own retry): +150 points; not applied again\n")
    assert json.loads(resent.stdout)["points"] == 150
    reused = patron("member", "adjust", "op-m1", "--points", "20", "--reason", "birthday", "--request-id", "adj-op-1",
                    *address)  # the id of the adjustment above, for another one: not made, and not said to be
    assert (reused.returncode, reused.stdout) == (1, "")
    assert re.fullmatch(r"patron: request id adj-op-1 was used by an adjustment unlike this one \(ledger entry \d+: "
                        r"adjust \+150 points 'goodwill'\): nothing more was applied; if that was this adjustment it "
                        r"is done, if not send this one with another request id\n", reused.stderr), reused.stderr
    taken = patron("member", "adjust", "op-m1", "--points", "-50", "--reason", "double credit", *address)
    assert json.loads(taken.stdout)["points"] == 100

    frozen = patron("member", "status", "op-m1", "freeze", "--reason", "card reported stolen", *address)
    assert json.loads(frozen.stdout)["status"] == "frozen"
    refused = patron("member", "adjust", "op-m1", "--points", "10", "--reason", "goodwill", *address)
    assert refused.returncode == 1
    assert refused.stderr.startswith("patron: adjustment rejected: card_frozen (request id adj-")
    unfrozen = patron("member", "status", "op-m1", "unfreeze", "--reason", "card found", *address)
    assert (json.loads(unfrozen.stdout)["status"], json.loads(unfrozen.stdout)["points"]) == ("active", 100)
    with PatronClient(march_server.address) as client:
        adjustments = [(e.ref, e.points, e.note) for e in client.ledger("op-m1") if e.kind == "adjust"]
    assert adjustments == [("adj-op-1", 150, "goodwill"), (adjustments[1][0], -50, "double credit")]
    assert adjustments[1][0].startswith("adj-")  # the command's own id, named apart from transactions' ids
    typo = patron("member", "adjust", "op-m2", "--points", "150", "--reason", "goodwill", *address)
    assert (typo.returncode, typo.stderr) == (1, "patron: no member 'op-m2': nothing changed (check the id; a new "
                                                 "member is enrolled with `patron member enroll` first)\n")
    with PatronClient(march_server.address) as client:  # the example rules enroll unknown members: not this way
        assert client.member("op-m2") is None


def test_an_adjustment_sent_again_is_found_past_the_first_page_of_a_long_ledger(march_server):
    """What first used a request id is read from the ledger a page at a time (500 entries)."""
    many = [{"txn_id": f"pg-{n}", "member_id": "pg-m1", "occurred_at_ms": ms("2026-03-05 10:00"),
             "kind": "adjustment", "amount_minor": 1, "note": "x"} for n in range(600)]
    with PatronClient(march_server.address) as client:
        assert {r.outcome for r in client.submit(many).results} == {pb.OUTCOME_ACCEPTED}
    again = patron("member", "adjust", "pg-m1", "--points", "1", "--reason", "x", "--request-id", "pg-550",
                   "--address", march_server.address)
    assert (again.returncode, again.stderr) == (0, "adjustment pg-550 was applied once already, by an earlier send "
                                                   "of this id (perhaps this command's own retry): +1 points; not "
                                                   "applied again\n")


def test_anomalies_prints_the_days_report_once_its_midnight_has_run(start_server):
    server = start_server(shards=1, start_date=parse_day("2026-03-05"))
    address = ["--address", server.address]
    with PatronClient(server.address) as client:
        client.submit([purchase("an-t1", "an-m1", "2026-03-05 10:00", 400_000),
                       purchase("an-t2", "an-m1", "2026-03-05 11:00", 400_000),
                       purchase("an-t3", "an-m2", "2026-03-05 11:00", 2900),
                       purchase("an-t4", "an-m3", "2026-03-03 10:00", 900_000)])  # late: before the folder began
    early = patron("anomalies", "--date", "2026-03-05", *address)
    assert early.returncode == 1
    assert early.stderr.startswith("patron: FAILED_PRECONDITION: ")
    before = patron("anomalies", "--date", "2026-03-03", *address)  # before the folder: its first run closes it
    assert (before.returncode, before.stdout) == (1, "")  # it said "no member crossed" (two probes)
    assert "the data folder's first run closes the days before it began" in before.stderr
    with PatronClient(server.address) as client:
        assert client.run_midnight("2026-03-07").anomalies == 2  # an-m1 on 5 March, an-m3 on 3 March
        [row] = client.anomaly_report("2026-03-05").rows
    shown = patron("anomalies", "--date", "2026-03-05", *address)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["member  day         points  transactions",
                                         f"an-m1   2026-03-05  {row.points:>6,}  an-t1 an-t2"]
    assert row.points > 5000  # the example rules' threshold
    document = json.loads(patron("anomalies", "--date", "2026-03-05", "--json", *address).stdout)
    assert document == {"date": "2026-03-05", "rows": [{"member_id": "an-m1", "day": "2026-03-05",
                                                        "points": row.points, "transactions": ["an-t1", "an-t2"]}]}
    quiet = patron("anomalies", "--date", "2026-03-06", *address)
    assert quiet.stdout == "no member crossed the daily anomaly threshold on 2026-03-06\n"
    late = json.loads(patron("anomalies", "--date", "2026-03-03", "--json", *address).stdout)
    assert [row["member_id"] for row in late["rows"]] == ["an-m3"]  # a late crossing before the folder began
    closed = patron("anomalies", "--date", "2026-03-04", *address)
    assert closed.stdout == "no member crossed the daily anomaly threshold on 2026-03-04\n"


def test_a_start_date_after_tomorrow_is_refused_unless_allowed_for_a_test_system(serve_process, tmp_path):
    """A new folder started a month ahead (a typo) refused every till's sale as too_late and kept
    that day (an outside probe). Dated from now: a month ahead is after tomorrow on any clock."""
    import datetime

    ahead = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    data = tmp_path / "data"
    with pytest.raises(RuntimeError, match=rf"--start-date {ahead} is after tomorrow .* --allow-future"):
        serve_process(data, "--start-date", ahead, rules=EXAMPLE_RULES)
    assert not data.exists()  # refused before the folder was made
    server = serve_process(data, "--start-date", ahead, "--allow-future", rules=EXAMPLE_RULES)
    with server.client() as client:
        assert {shard.business_day for shard in client.status().shards} == {ahead}
