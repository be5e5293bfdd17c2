"""The same generated stream through `patron serve` and through `patron replay` gives the
same results, the same members and the same ledgers."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest
from google.protobuf.json_format import MessageToDict

from bench.workload import Workload, generate, write_jsonl
from cli.replay import ReplayFiles, replay_files
from cli.show import entry_summary, member_json, member_summary
from client import PatronClient
from engine.calendar import LocalCalendar, iso, parse_day
from engine.summary import EntrySummary, MemberSummary, to_json
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_metrics import scrape, value

WORKLOAD = Workload(transactions=4_000, members=600, days=3, start="2026-11-16", seed=7)
OUTCOMES = {1: "accepted", 2: "duplicate", 3: "ignored", 4: "rejected"}


def basic(result) -> tuple:
    return result.txn_id, OUTCOMES[result.outcome], result.points, result.growth, result.reason


def served(client: PatronClient, txns: list[dict], batch_size: int = 500, window: int = 8,
           start: str = WORKLOAD.start, fields=basic) -> list[tuple]:
    """Send in stream order; when the stream's local date moves on, run that midnight first,
    as replay does. Each result becomes `fields(result)`."""
    calendar = LocalCalendar("Asia/Shanghai")
    today, pending, results = parse_day(start), [], []

    def flush() -> None:
        for ack in client.stream(client.batches(pending, batch_size), window=window):
            results.extend(fields(r) for r in ack.results)
        pending.clear()

    for txn in txns:
        day = calendar.day_of(txn["occurred_at_ms"])
        if day > today:
            flush()
            client.run_midnight(iso(day))
            today = day
        pending.append(txn)
    flush()
    return results


def replayed(tmp_path: Path, workload: Workload = WORKLOAD) -> tuple[list[tuple], list[dict], list[dict]]:
    stream = tmp_path / "stream.jsonl"
    write_jsonl(stream, workload)
    out = {name: tmp_path / f"{name}.jsonl" for name in ("members", "results", "ledger")}
    replay_files(ReplayFiles(rules=EXAMPLE_RULES, transactions=stream, members_out=out["members"],
                             results_out=out["results"], ledger_out=out["ledger"]))
    results = [(r["txn_id"], r["outcome"], r["points"], r["growth"], r["reason"]) for r in _jsonl(out["results"])]
    return results, _jsonl(out["members"]), _jsonl(out["ledger"])


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("shards", [1, 2])
def test_serve_and_replay_agree_on_results_members_and_ledgers(start_server, tmp_path, shards):
    server = start_server(shards=shards, start_date=parse_day(WORKLOAD.start))
    expected_results, expected_members, expected_ledger = replayed(tmp_path)
    with PatronClient(server.address) as client:
        assert served(client, list(generate(WORKLOAD))) == expected_results
        assert_members_and_ledgers(client, expected_members, expected_ledger)


def test_small_batches_queued_up_are_committed_together_and_still_agree_with_replay(start_server, tmp_path):
    # 200 batches of 20 with 48 unanswered: they queue behind the call in flight to the shard, and
    # leave in groups, each group one commit
    server = start_server(shards=1, start_date=parse_day(WORKLOAD.start), metrics_port=0)
    expected_results, expected_members, expected_ledger = replayed(tmp_path)
    with PatronClient(server.address) as client:
        assert served(client, list(generate(WORKLOAD)), batch_size=20, window=48) == expected_results
        assert_members_and_ledgers(client, expected_members, expected_ledger)
    samples = scrape(server.server.metrics_port)
    commits = value(samples, "patron_shard_apply_seconds_count", shard="0")
    batches = value(samples, "patron_batch_latency_seconds_count")
    assert batches >= WORKLOAD.transactions / 20  # a day ends mid-batch here and there
    assert 0 < commits < batches


def assert_members_and_ledgers(client: PatronClient, expected_members: list[dict], expected_ledger: list[dict]
                               ) -> None:
    """One shape: `patron member show --json` prints replay's very lines, and gRPC's JSON mapping
    has the same fields with the same values (proto3 writes int64 as strings, leaves zeros out)."""
    with ThreadPoolExecutor(8) as pool:  # read in parallel, each member checked as before
        answers = pool.map(client.member, [member["member_id"] for member in expected_members])
        for member, got in zip(expected_members, answers, strict=True):
            assert json.loads(member_json(member_summary(got))) == member
    for member in expected_members[::25]:
        member_id = member["member_id"]
        assert grpc_json(client.member(member_id)) == member_as_grpc(member)
        entries = client.ledger(member_id)
        replayed_entries = [e for e in expected_ledger if e["member_id"] == member_id]
        assert [json.loads(to_json(entry_summary(e))) for e in entries] == replayed_entries
        assert [grpc_json(e) for e in entries] == [msgspec.to_builtins(msgspec.structs.asdict(
            msgspec.convert(e, EntrySummary))) for e in replayed_entries]


def member_as_grpc(member: dict) -> dict:
    """A replayed member line as the gRPC Member has it: every field, coupons as objects, and the
    bonus balance named `bonus_value_minor`, as the contract names it."""
    expected = msgspec.to_builtins(msgspec.structs.asdict(msgspec.convert(member, MemberSummary)))
    expected["bonus_value_minor"] = expected.pop("bonus_value")
    del expected["date_attributes"]  # on the wire, each attribute's own type (AttributeValue.date)
    return expected


def grpc_json(message) -> dict:
    """The proto3 JSON mapping with every field, 64-bit integers back as numbers."""
    mapped = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    for field in message.DESCRIPTOR.fields:
        if field.cpp_type in (field.CPPTYPE_INT64, field.CPPTYPE_UINT64):
            mapped[field.name] = int(mapped[field.name])
    return mapped
