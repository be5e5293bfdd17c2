"""The patron command as a retailer runs it: rules validate, replay, generate; what an adjustment's
answer is told as."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli.admin import _dates_shortened, _show, midnight_progress_line
from cli.wallet import line_words
from engine.calendar import MOST_DATES_SHOWN
from proto import patron_pb2 as pb
from tests.builders import ms

RULES = Path(__file__).parents[1] / "examples" / "rules.toml"


def patron(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rules_validate_accepts_the_example_and_exits_zero():
    done = patron("rules", "validate", str(RULES))
    assert done.returncode == 0
    assert "valid" in done.stdout


def test_rules_validate_prints_every_problem_with_its_path_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text().replace('window = "3 months"', 'window = "3 weeks"', 1)
                   .replace('rounding = "floor"', 'rounding = "round"'))
    done = patron("rules", "validate", str(bad))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f'{bad}: points.rounding: expected "floor", "half_up" or "carry", got "round"',
        f'{bad}: tiers[2].window: expected "lifetime", "N months" or "N days" (N from 1 to 9,999), got "3 weeks"',
    ]


def test_rules_validate_reports_problems_of_every_table_in_one_pass(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text().replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"')
                   .replace('type = "review"', 'type = "sign_in"').replace("percent = 80", "percent = 120"))
    done = patron("rules", "validate", str(bad))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{bad}: coupons[2].percent: expected an integer from 1 to 99, got 120",
        f'{bad}: timezone: expected an IANA timezone name such as "Asia/Shanghai", got "Mars/Olympus"',
        f'{bad}: events[1].type: expected a unique, non-empty event type, got "sign_in"',
    ]


def test_rules_validate_tells_the_first_50_problems_and_how_many_more(tmp_path):
    """800,000 bad entries printed problems for minutes (an outside probe)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text().replace("[points]\n", "[points]\n" + "".join(f"x{n} = 1\n" for n in range(60))))
    done = patron("rules", "validate", str(bad))
    assert done.returncode == 1
    told = done.stderr.splitlines()
    assert [line.split(";")[0] for line in told[:50]] == [f"{bad}: points.x{n}: unknown key" for n in range(50)]
    assert told[50:] == [f"{bad}: … and 10 more problems"]


def test_rules_validate_names_a_file_it_cannot_read_once(tmp_path):
    done = patron("rules", "validate", str(tmp_path / "absent.toml"))
    assert done.returncode == 1
    missing = tmp_path / "absent.toml"
    assert done.stderr.splitlines() == [f"{missing}: cannot read the rules file (No such file or directory)"]


def test_replay_writes_one_result_per_line_in_order_and_members_sorted(tmp_path):
    wednesday = ms("2026-03-04 10:00")
    lines = [
        {"txn_id": "t1", "member_id": "zoe", "occurred_at_ms": wednesday, "kind": "purchase",
         "lines": [{"sku": "A", "paid_minor": 2900, "quantity": 1}]},
        {"txn_id": "t2", "member_id": "amy", "occurred_at_ms": wednesday, "kind": "event", "event_type": "sign_in"},
        "this line is not json",
        {"txn_id": "t3", "member_id": "amy", "occurred_at_ms": "soon", "kind": "purchase"},
        {"txn_id": "t4", "member_id": "zoe", "occurred_at_ms": wednesday, "kind": "refund", "refund_of": "t1",
         "amount_minor": 2900},
        {"txn_id": "t5", "member_id": "amy", "occurred_at_ms": wednesday, "kind": "purchase", "status": "pending",
         "lines": [{"sku": "A", "paid_minor": 2900}]},
        {"txn_id": "t1", "member_id": "zoe", "occurred_at_ms": wednesday, "kind": "purchase",
         "lines": [{"sku": "A", "paid_minor": 2900}]},
    ]
    source = tmp_path / "t.jsonl"
    source.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    done = patron("replay", "--rules", str(RULES), "--transactions", str(source), "--members-out",
                  str(tmp_path / "m.jsonl"), "--results-out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "7 transactions" in done.stderr
    assert "per second" in done.stderr
    results = [(r["txn_id"], r["outcome"], r["points"], r["reason"]) for r in jsonl(tmp_path / "r.jsonl")]
    assert results == [("t1", "accepted", 20, ""), ("t2", "accepted", 5, ""), ("", "rejected", 0, "malformed"),
                       ("t3", "rejected", 0, "malformed"), ("t4", "accepted", -20, ""),
                       ("t5", "ignored", 0, "not_paid"), ("t1", "duplicate", 20, "")]
    members = jsonl(tmp_path / "m.jsonl")
    assert [(m["member_id"], m["tier"], m["points"], m["growth"], m["abnormal"], m["status"]) for m in members] == [
        ("amy", "Basic", 5, 1, False, "active"), ("zoe", "Basic", 0, 0, False, "active")]


def test_replay_takes_spending_in_and_writes_values_codes_and_coupons_out(tmp_path):
    day = ms("2026-12-02 10:00")
    lines = [
        {"txn_id": "c1", "member_id": "amy", "occurred_at_ms": day, "kind": "recharge", "amount_minor": 60_000},
        {"txn_id": "p1", "member_id": "amy", "occurred_at_ms": day, "kind": "payment", "amount_minor": 65_000},
        {"txn_id": "r1", "member_id": "amy", "occurred_at_ms": day, "kind": "redeem", "amount_minor": 2_900},
        {"txn_id": "u1", "member_id": "amy", "occurred_at_ms": day, "kind": "coupon_use",
         "coupon_code": "RECHARGE20-amy-1", "amount_minor": 12_000},
        {"txn_id": "i1", "member_id": "amy", "occurred_at_ms": day, "kind": "coupon_issue",
         "coupon_id": "BIRTHDAY-CAKE"},
        {"txn_id": "x1", "member_id": "bob", "occurred_at_ms": day, "kind": "redeem", "points": 10},
    ]
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = patron("replay", "--rules", str(RULES), "--transactions", str(source), "--members-out",
                  str(tmp_path / "m.jsonl"), "--results-out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stderr
    results = [(r["txn_id"], r["outcome"], r["points"], r["reason"], r["value_minor"], r["coupon_code"])
               for r in jsonl(tmp_path / "r.jsonl")]
    assert results == [("c1", "accepted", 500, "", 68_000, "RECHARGE20-amy-1"),
                       ("p1", "accepted", 0, "", -65_000, ""), ("r1", "accepted", -500, "", 500, ""),
                       ("u1", "accepted", 0, "", 2_000, "RECHARGE20-amy-1"),
                       ("i1", "accepted", 0, "", 0, "BIRTHDAY-CAKE-amy-1"),
                       ("x1", "rejected", 0, "unknown_member", 0, "")]
    [amy] = jsonl(tmp_path / "m.jsonl")
    assert (amy["tier"], amy["points"], amy["available_points"], amy.get("stored_value", 0), amy["bonus_value"],
            amy["tags"]) == ("Silver", 0, 0, 0, 3_000, [])
    assert amy["coupons"] == [
        {"code": "BIRTHDAY-CAKE-amy-1", "coupon_id": "BIRTHDAY-CAKE", "status": "unused",
         "valid_from": "2026-12-02", "valid_to": "2026-12-15"},
        {"code": "RECHARGE20-amy-1", "coupon_id": "RECHARGE20", "status": "used", "valid_from": "2026-12-02",
         "valid_to": "2027-03-01"},
        {"code": "WELCOME10-amy-1", "coupon_id": "WELCOME10", "status": "unused", "valid_from": "2026-12-03",
         "valid_to": "2027-01-01"}]


def test_replay_of_a_generated_stream_accounts_for_every_line(tmp_path):
    stream = tmp_path / "t.jsonl"
    assert patron("generate", "--out", str(stream), "--transactions", "3000", "--members", "500",
                  "--start", "2026-11-16").returncode == 0
    done = patron("replay", "--rules", str(RULES), "--transactions", str(stream), "--members-out",
                  str(tmp_path / "m.jsonl"), "--results-out", str(tmp_path / "r.jsonl"), "--ledger-out",
                  str(tmp_path / "l.jsonl"), "--until", "2027-01-01")
    assert done.returncode == 0, done.stderr
    results = jsonl(tmp_path / "r.jsonl")
    assert [r["txn_id"] for r in results] == [json.loads(line)["txn_id"] for line in stream.read_text().splitlines()]
    ledger = jsonl(tmp_path / "l.jsonl")
    for member in jsonl(tmp_path / "m.jsonl"):
        assert member["points"] == sum(e.get("points", 0) for e in ledger if e["member_id"] == member["member_id"])


def test_replay_with_a_bad_rules_file_names_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n")
    done = patron("replay", "--rules", str(bad), "--transactions", str(bad), "--members-out",
                  str(tmp_path / "m"), "--results-out", str(tmp_path / "r"))
    assert done.returncode == 1
    assert "programme: missing; expected a string" in done.stderr


def test_replay_reads_whole_lines_whatever_its_chunk_size_a_line_longer_than_a_chunk_and_no_last_newline(
        tmp_path, monkeypatch):
    import cli.replay
    from cli.replay import ReplayFiles, replay_files

    monkeypatch.setattr(cli.replay, "_CHUNK_BYTES", 64)  # every line is longer: each ends in a later read
    day = ms("2026-03-04 10:00")
    lines = [json.dumps({"txn_id": f"t{n}", "member_id": f"m{n % 2}", "occurred_at_ms": day, "kind": "purchase",
                         "lines": [{"sku": "A" * (20 * n), "paid_minor": 2900}]}) for n in range(1, 6)]
    source = tmp_path / "t.jsonl"
    source.write_text("\n".join(lines))  # no newline after the last line
    files = ReplayFiles(rules=RULES, transactions=source, members_out=tmp_path / "m.jsonl",
                        results_out=tmp_path / "r.jsonl")
    assert replay_files(files).transactions == 5
    assert [(r["txn_id"], r["outcome"]) for r in jsonl(tmp_path / "r.jsonl")] == [
        (f"t{n}", "accepted") for n in range(1, 6)]


def test_rules_validate_holds_a_document_to_what_a_new_version_must_meet(tmp_path):
    unnamed = tmp_path / "unnamed.toml"
    unnamed.write_text(RULES.read_text().replace('name = "Silver"', 'name = ""')
                       .replace('upgrade_to = "Silver"', 'upgrade_to = ""'))
    done = patron("rules", "validate", str(unnamed))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f'{unnamed}: tiers[1].name: expected a non-empty name, got ""']


def test_a_long_list_of_dates_is_shown_as_its_span():
    many = [f"2027-01-{day:02d}" for day in range(1, MOST_DATES_SHOWN + 2)]
    shown = _dates_shortened({"midnight": {"dates": many, "running": False}, "shards": [{"dates": many[:2]}]})
    assert shown == {"midnight": {"dates": ["2027-01-01", f"... {len(many) - 2} dates ...", many[-1]],
                                  "running": False}, "shards": [{"dates": many[:2]}]}


def test_status_json_gives_counts_as_numbers_in_maps_and_messages_alike(capsys):
    """proto3's JSON writes 64-bit integers as strings; a map's values were left so ("vip": "2110",
    an outside probe) after the shards' counts had been made numbers."""
    _show(pb.StatusResponse(rule_version=3, members_per_tag={"vip": 2110, "lapsed": 0},
                            shards=[pb.ShardStatus(shard=0, members=7)]))
    shown = json.loads(capsys.readouterr().out)
    assert shown["members_per_tag"] == {"vip": 2110, "lapsed": 0}
    assert shown["rule_version"] == 3
    assert shown["shards"][0]["members"] == 7


def test_midnight_progress_says_a_run_is_starting_before_it_counts_a_dates_members():
    starting = pb.MidnightProgress(running=True, until="2026-11-20")
    assert midnight_progress_line(starting) == "midnight until 2026-11-20 (0 dates done), starting, 0 s"
    under_way = pb.MidnightProgress(running=True, until="2026-11-20", dates=["2026-11-18"], date="2026-11-19",
                                    members_done=1500, members_total=4000, seconds=3.4)
    assert midnight_progress_line(under_way) == (
        "midnight until 2026-11-20 (1 date done), 2026-11-19: 1,500 of 4,000 members due, 3 s")
    nobody_due = pb.MidnightProgress(running=True, until="2026-11-20", date="2026-11-19")
    assert midnight_progress_line(nobody_due) == (
        "midnight until 2026-11-20 (0 dates done), 2026-11-19: no member due, 0 s")


def test_the_banners_commands_run_from_where_serve_was_started(tmp_path, monkeypatch):
    """They said .venv/bin/patron wherever serve ran: from elsewhere, exit 127 (an outside probe)."""
    from cli.serve import patron_command

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no patron the shell would find
    monkeypatch.chdir(tmp_path)
    command = patron_command()
    assert Path(command).is_absolute(), command
    assert os.access(command, os.X_OK), command
    monkeypatch.chdir(Path(sys.executable).parent.parent.parent)  # the folder holding .venv, as `make run`
    assert patron_command() == str(Path(sys.executable).parent.relative_to(Path.cwd()) / "patron")


def test_the_banners_commands_say_what_a_server_with_tokens_and_tls_needs():
    from types import SimpleNamespace

    from cli.serve import _client_needs

    def server(tokens: dict, tls_cert: str, tls_client_ca: str = "") -> SimpleNamespace:
        return SimpleNamespace(tokens=tokens, config=SimpleNamespace(tls_cert=tls_cert, tls_client_ca=tls_client_ca))

    assert _client_needs(server({}, "")) == ""
    assert _client_needs(server({"t": "admin"}, "server.pem")) == (
        " (with PATRON_TOKEN=<a token of the tokens file> and PATRON_TLS_CA=<the CA that signed --tls-cert> "
        "in the environment)")
    assert _client_needs(server({}, "server.pem", "clients.pem")) == (  # an auth probe: the certificate was not named
        " (with PATRON_TLS_CA=<the CA that signed --tls-cert>, PATRON_TLS_CERT=<a client certificate "
        "--tls-client-ca signed> and PATRON_TLS_KEY=<its key> in the environment)")


def test_a_generated_stream_ends_today_unless_told_where_to_start(tmp_path):
    # an outside probe: a fixed default start fell behind max_lateness_days, and a newcomer's
    # generate then send was all `too_late`
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    stream = tmp_path / "t.jsonl"
    assert patron("generate", "--out", str(stream), "--transactions", "300", "--days", "3").returncode == 0
    zone = ZoneInfo("Asia/Shanghai")  # the generator's programme
    days = {datetime.fromtimestamp(json.loads(line)["occurred_at_ms"] / 1000, zone).date()
            for line in stream.read_text().splitlines()}
    today = date.today()
    assert today - timedelta(days=3) <= min(days), min(days)
    assert max(days) <= today + timedelta(days=1), max(days)


def test_a_generated_stream_keeps_to_the_days_asked_for():
    """The last minute's jitter put a few transactions on the next day, which met its midnight
    early when served and moved a replay's whole book (an outside probe)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bench.workload import Workload, generate

    zone = ZoneInfo("Asia/Shanghai")  # the generator's programme
    days = {datetime.fromtimestamp(txn["occurred_at_ms"] / 1000, zone).date().isoformat()
            for txn in generate(Workload(transactions=5000, members=300, days=1, start="2026-11-17", seed=11))}
    assert days == {"2026-11-17"}


def test_the_member_card_tells_points_held_for_an_operator_from_those_in_a_return_window():
    # an outside probe: "9,600 pending" said nothing of the 8,600 an operator had to release
    from cli.show import member_card
    from engine.summary import MemberSummary

    card = member_card(MemberSummary("c-1001", "Basic", 0, 0, True, "active", 0, 0, [], [], pending_points=9600,
                                     held_points=8600))
    assert "points        0 (and 9,600 pending, 8,600 of them held for an operator)" in card.splitlines()


def test_the_member_card_shows_stored_value_with_its_bonus():
    # an outside probe: a member's 2.00 of bonus, spendable as its stored value, was not on the card
    from cli.show import member_card
    from engine.summary import MemberSummary

    card = member_card(MemberSummary("c-1001", "Basic", 0, 0, False, "active", 0, 200, [], [], stored_value=5000))
    assert "stored value  52.00 (50.00 paid in, 2.00 bonus)" in card.splitlines()  # what can be spent first


def test_the_member_card_names_where_a_member_came_from_each_on_its_own_line():
    """Source and content were shown joined on a line labelled "campaign" (an outside probe)."""
    from cli.show import member_card
    from engine.summary import MemberSummary

    card = member_card(MemberSummary("c-1002", "Basic", 0, 0, False, "active", 0, 0, [], [], source="wechat",
                                     content="article-7", campaign="spring"))
    assert [line for line in card.splitlines() if line.split()[0] in ("source", "content", "campaign")] == [
        "source        wechat", "content       article-7", "campaign      spring"]


def test_a_ledger_rows_why_names_the_coupon_it_issued_or_used():
    """Only `--json` said which coupon (an outside probe)."""
    from cli.show import _why
    from engine.summary import EntrySummary

    entry = EntrySummary("m1", 2, "2026-12-05", "txn", "Q1", 1, "coupon_issued", coupon_code="WELCOME-m1-1")
    assert _why(entry) == "transaction Q1; coupon WELCOME-m1-1 (rules v1)"


def test_a_ledger_rows_why_names_the_bonus_stored_value_beside_the_principal():
    # an imported member's opening showed "stored value +50.00" and not its +2.00 bonus (an outside probe)
    from cli.show import _why
    from engine.summary import EntrySummary

    entry = EntrySummary("m1", 1, "2026-12-05", "import", "shop.csv", 1, "opening", stored_value=5000, bonus_value=200)
    assert _why(entry) == "import shop.csv; stored value +50.00; bonus +2.00 (rules v1)"


def test_a_progress_line_in_a_log_is_written_once_when_the_close_follows_the_last_update():
    """`patron import` ended its log with the same line twice (an outside probe)."""
    import io

    from bench.progress import Progress

    log = io.StringIO()
    progress = Progress("import", 0, unit="rows", stream=log, every_plain=0.0)
    progress.update(40)
    progress.close()
    assert [line.split(",")[0] for line in log.getvalue().splitlines()] == ["import: 40 rows"]


def test_two_generated_loads_within_one_second_are_different_transactions():
    """Named by the second they were sent in, the second load was the first again: duplicates (an outside probe)."""
    from bench.workload import generate
    from cli.admin import generated_load

    first, second = (next(generate(generated_load(20, "2026-03-05", 1_794_000_000_000_000_000 + ns)))
                     for ns in (1_000, 2_000))
    assert first["txn_id"] != second["txn_id"]


def test_send_reads_a_transactions_file_past_a_byte_order_mark(tmp_path):
    """As import and replay do: the mark made the first line malformed (an outside probe)."""
    from collections import deque

    from cli.admin import _transactions
    from cli.inputs import BOM

    source = tmp_path / "t.jsonl"
    line = b'{"txn_id": "t1", "member_id": "m1", "occurred_at_ms": 1794000000000, "kind": "purchase", '
    source.write_bytes(BOM + line + b'"amount_minor": 5}\n')
    rejected: list = []
    assert [t.txn_id for t in _transactions(source, rejected, {}, deque())] == ["t1"]
    assert rejected == []


def test_member_show_json_keeps_which_attributes_are_dates():
    from cli.show import member_summary
    from proto import patron_pb2 as pb

    message = pb.Member(member_id="m1", tier="Basic")
    message.attributes["since"].date = "2026-12-02"
    message.attributes["city"].text = "Hangzhou"
    summary = member_summary(message)
    assert (summary.attributes, summary.date_attributes) == ({"since": "2026-12-02", "city": "Hangzhou"}, ["since"])


def test_the_client_sends_a_date_attribute_as_a_date_and_refuses_a_datetime():
    from datetime import date, datetime

    from client.patron_client import enroll_request

    request = enroll_request("m1", attributes={"since": date(2026, 12, 2), "city": "Hangzhou", "children": 2})
    assert [(name, value.WhichOneof("value")) for name, value in sorted(request.attributes.items())] == [
        ("children", "number"), ("city", "text"), ("since", "date")]
    with pytest.raises(TypeError, match=r"attributes\.since: a datetime\.date, not a datetime"):
        enroll_request("m1", attributes={"since": datetime(2026, 12, 2, 10, 0)})


def _adjusted(outcome: int, points: int, reason: str = "") -> pb.TxnResult:
    return pb.TxnResult(txn_id="adj-1", outcome=outcome, points=points, reason=reason)


def test_an_adjustment_answered_as_asked_tells_nothing_more(capsys):
    from cli.adjustment import _tell

    _tell(_adjusted(pb.OUTCOME_ACCEPTED, -500), argparse.Namespace(points=-500), "adj-1")
    assert capsys.readouterr().err == ""


def test_an_adjustment_that_took_less_than_asked_says_so(capsys):
    from cli.adjustment import _tell

    _tell(_adjusted(pb.OUTCOME_ACCEPTED, -100), argparse.Namespace(points=-500), "adj-1")
    assert capsys.readouterr().err == ("took 100 of the 500 points asked: the balance may not go below 0 (the rules' "
                                       "allow_negative_points = false); the ledger entry keeps the rest as not "
                                       "recovered\n")


def _entry(seq: int, kind: str, points: int, note: str = "", ref: str = "adj-1") -> pb.LedgerEntry:
    return pb.LedgerEntry(member_id="M1", seq=seq, ref=ref, kind=kind, points=points, note=note)


def test_an_adjustment_answered_duplicate_says_what_the_first_send_did(capsys):
    from cli.adjustment import _tell

    first = [_entry(4, "adjust", 150, "goodwill")]
    _tell(_adjusted(pb.OUTCOME_DUPLICATE, 150), argparse.Namespace(points=150, reason="goodwill"), "adj-1", first)
    [said] = capsys.readouterr().err.splitlines()
    assert said.startswith("adjustment adj-1 was applied once already, by an earlier send of this id")
    assert said.endswith(": +150 points; not applied again")


def test_an_adjustment_whose_id_another_transaction_used_fails_as_not_applied(capsys):
    """The id of a purchase, or of another adjustment (another reason): answered `duplicate`, this
    adjustment was not made; the command said it had been and exited 0 (an outside probe)."""
    from cli.adjustment import AdjustmentError, _tell

    asked = argparse.Namespace(points=10, reason="goodwill")
    purchase = [_entry(3, "earn", 1000, ref="P1")]
    with pytest.raises(AdjustmentError, match=r"^request id P1 is the id of another of the member's transactions "
                                              r"\(ledger entry 3: earn \+1,000 points\): this adjustment was not "
                                              r"applied; send it with another request id, or none$"):
        _tell(_adjusted(pb.OUTCOME_DUPLICATE, 1000), asked, "P1", purchase)
    unlike = r"^request id adj-1 was used by an adjustment unlike this one \(ledger entry 5: adjust \+150 points "
    for reason, points in (("double credit", 10), ("goodwill", 150)):  # another reason; the same one for other points
        with pytest.raises(AdjustmentError, match=unlike + rf"'{reason}'\): nothing more was applied; if that was "
                                                  r"this adjustment it is done, if not send this one with another "
                                                  r"request id$"):
            _tell(_adjusted(pb.OUTCOME_DUPLICATE, 150), asked,
                  "adj-1", [_entry(5, "adjust", points if reason == "goodwill" else 150, reason)])
    with pytest.raises(AdjustmentError, match=r"\(it wrote no ledger entry\)"):  # a frozen card's purchase: 0 points
        _tell(_adjusted(pb.OUTCOME_DUPLICATE, 0), asked, "Q1", [])
    assert capsys.readouterr().err == ""


def test_an_adjustment_sent_again_is_known_by_its_points_asked_and_its_reason_trimmed(capsys):
    """A negative adjustment the balance capped keeps the rest as not recovered: it asked its points
    less that; a reason typed with a trailing space is the same reason."""
    from cli.adjustment import _tell

    capped = pb.LedgerEntry(seq=4, ref="adj-1", kind="adjust", points=-100, unrecovered=400, note="double credit")
    _tell(_adjusted(pb.OUTCOME_DUPLICATE, -100), argparse.Namespace(points=-500, reason="double credit "), "adj-1",
          [capped])
    assert capsys.readouterr().err.startswith("adjustment adj-1 was applied once already")


def test_a_rejected_adjustment_fails_with_its_reason():
    from cli.adjustment import AdjustmentError, _tell

    rejected = r"^adjustment rejected: card_lost \(request id adj-1; nothing changed\)$"
    with pytest.raises(AdjustmentError, match=rejected):
        _tell(_adjusted(pb.OUTCOME_REJECTED, 0, "card_lost"), argparse.Namespace(points=5), "adj-1")


def test_send_names_a_batch_by_its_transactions_and_every_batch_before_however_the_file_is_cut():
    """The same cut gives the same ids (a resend is answered as the first send was); another
    cut, other ids, its last batch too (it took another cut's last batch's rejections)."""
    from cli.admin import named_by_content

    def batch(numbers: range) -> pb.TransactionBatch:
        return pb.TransactionBatch(transactions=[pb.Transaction(txn_id=f"t{n}", member_id="m1") for n in numbers])

    def ids(size: int) -> list[str]:
        return [b.batch_id for b in named_by_content(batch(range(at, min(at + size, 10))) for at in range(0, 10, size))]

    assert ids(7) == ids(7)
    assert len({*ids(10), *ids(7), *ids(3)}) == 1 + 2 + 4


@pytest.mark.parametrize(("group", "action"), [("member", "show"), ("rules", "validate"), ("shards", "move"),
                                               ("shards", "rebalance"), ("events", "tail")])
def test_a_group_without_its_action_lists_its_actions(group, action):
    """`patron member` alone printed patron's own commands (an outside probe). Each action's help
    is on its line: `rebalance`'s was on the next, read as none (an outside tester)."""
    done = patron(group)
    assert done.returncode == 2
    assert done.stdout.startswith(f"usage: patron {group} ")
    assert re.search(rf"^    {action} +\S", done.stdout, re.MULTILINE), done.stdout


def test_patron_alone_lists_each_command_with_its_help_on_its_line():
    done = patron()
    assert done.returncode == 2
    for command in ("serve", "anomalies", "checkpoint"):
        assert re.search(rf"^    {command} +\S", done.stdout, re.MULTILINE), done.stdout


def test_version_is_the_installed_package_s():
    import tomllib

    version = tomllib.loads((RULES.parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert patron("--version").stdout == f"patron {version}\n"


def test_serves_live_count_goes_on_through_a_shards_restart():
    """Each shard counts from its own start: summed, the line went backwards when one restarted
    ("3,549 transactions accepted (-334/s)": a cluster probe)."""
    from cli.serve import AcceptedSinceStart

    accepted = AcceptedSinceStart()
    assert accepted.add({0: 100, 1: 200}) == 300
    assert accepted.add({0: 150, 1: 200}) == 350
    assert accepted.add({0: 150, 1: 40}) == 390  # shard 1 restarted: its 40 are new
    assert accepted.add({0: 160, 1: 90}) == 450


def test_a_quote_line_may_have_no_sku_and_one_with_a_colon_is_sent_to_basket():
    """A line without a barcode (`--line ":1:999:loose"`) could not be quoted (an outside tester)."""
    assert line_words(":1:999:loose") == {"sku": "", "quantity": 1, "paid_minor": 999, "category": "loose"}
    assert line_words(":2:500") == {"sku": "", "quantity": 2, "paid_minor": 500}
    assert line_words("A:1:2:3") == {"sku": "A", "quantity": 1, "paid_minor": 2, "category": "3"}
    with pytest.raises(argparse.ArgumentTypeError, match="--basket"):
        line_words("A:B:1:2")
