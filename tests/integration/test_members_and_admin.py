"""Members and Admin over gRPC: enrollment, card status, adjustments, the ledger, publishing
rules, midnight runs, anomaly reports and checkpoints."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import grpc
import msgspec
import pytest
import ray

from actors.routing import even_layout, shard_of
from client import PatronClient
from engine.calendar import parse_day
from engine.errors import PatronError, ShardUnavailableError
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES

RULES = EXAMPLE_RULES.read_text()


def purchase(txn_id: str, member: str, when: str, paid: int) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(when), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}]}


@pytest.fixture(scope="module")
def members_client(ray_session, tmp_path_factory):
    """For the tests of single members: one server for all of them (each names its own members)."""
    from tests.conftest import two_shard_server

    for server in two_shard_server(tmp_path_factory, "members", job_chunk=1):
        with PatronClient(server.address) as client:
            yield client


@pytest.fixture
def client(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), job_chunk=1)
    with PatronClient(server.address) as client:
        yield client


def test_enrollment_records_the_profile_and_the_channels_default_tier(members_client):
    answer = members_client.enroll("enrolled", channel="pos", birthday="1990-03-05", source="wechat", campaign="spring",
                           attributes={"city": "Hangzhou", "children": 2, "since": date(2026, 12, 2)})
    assert answer.created
    member = members_client.member("enrolled")
    assert (member.tier, member.birthday, member.source, member.campaign, member.enrolled_on) == (
        "Basic", "03-05", "wechat", "spring", "2026-11-17")
    assert (member.attributes["city"].text, member.attributes["children"].number) == ("Hangzhou", 2)
    assert (member.attributes["since"].WhichOneof("value"), member.attributes["since"].date) == ("date", "2026-12-02")
    assert not members_client.enroll("enrolled", content="poster").created
    assert members_client.member("enrolled").source == "wechat"


def test_a_bad_birthday_is_invalid_argument(members_client):
    with pytest.raises(grpc.RpcError) as raised:
        members_client.enroll("bad-birthday", birthday="1990-02-30")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'birthday: expected "MM-DD" or "YYYY-MM-DD", got' in raised.value.details()


def test_a_frozen_card_earns_nothing_until_it_is_unfrozen(members_client):
    members_client.submit([purchase("frozen-t1", "frozen", "2026-11-17 10:00", 2900)])
    assert members_client.set_status("frozen", "freeze", "suspicious").status == "frozen"
    frozen = members_client.submit([purchase("frozen-t2", "frozen", "2026-11-17 11:00", 2900)]).results[0]
    assert (frozen.outcome, frozen.points, frozen.reason) == (pb.OUTCOME_ACCEPTED, 0, "frozen")
    assert members_client.set_status("frozen", "unfreeze").status == "active"
    assert members_client.submit([purchase("frozen-t3", "frozen", "2026-11-17 12:00", 2900)]).results[0].points == 20
    assert [e.status for e in members_client.ledger("frozen") if e.kind == "status"] == ["frozen", "active"]


def test_status_actions_name_what_is_wrong(members_client):
    with pytest.raises(grpc.RpcError) as raised:
        members_client.set_status("nobody", "freeze")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    members_client.enroll("lost")
    assert members_client.set_status("lost", "report_lost").status == "lost"
    with pytest.raises(grpc.RpcError) as raised:
        members_client.set_status("lost", "unfreeze")
    # the card's state refuses a well-formed request (an outside probe: INVALID_ARGUMENT read as malformed)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details() == "cannot unfreeze member 'lost': the card is lost"


def test_an_adjustment_resent_with_its_request_id_has_no_second_effect(members_client):
    first = members_client.adjust("adjusted", 300, "goodwill", request_id="r-1")
    again = members_client.adjust("adjusted", 300, "goodwill", request_id="r-1")
    assert (first.result.outcome, again.result.outcome) == (pb.OUTCOME_ACCEPTED, pb.OUTCOME_DUPLICATE)
    assert members_client.member("adjusted").points == 300
    last = members_client.ledger("adjusted")[-1]
    assert (last.kind, last.cause, last.note) == ("adjust", "operator", "goodwill")


def test_an_operator_sets_a_tier_by_hand_with_a_reason_kept_in_the_ledger(members_client):
    # SPEC §6: the engine and the shards had it, the API did not (an outside probe)
    members_client.enroll("m-tier")
    member = members_client.set_tier("m-tier", "Gold", "complaint goodwill")
    assert (member.tier, member.tier_valid_until) == ("Gold", "2027-11-16")  # 12 months from the business day
    assert [(e.cause, e.tier_to, e.note) for e in members_client.ledger("m-tier") if e.kind == "tier"] == [
        ("operator", "Gold", "complaint goodwill")]
    for tier, reason, code in (("Gold", "", grpc.StatusCode.INVALID_ARGUMENT),
                               ("Platinum", "why", grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as refused:
            members_client.set_tier("m-tier", tier, reason)
        assert refused.value.code() == code, refused.value.details()
    with pytest.raises(grpc.RpcError) as unknown:
        members_client.set_tier("nobody", "Gold", "why")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_ledger_pages_and_explains_every_balance(members_client, monkeypatch):
    monkeypatch.setattr("actors.gateway.LEDGER_PAGE", 5)  # the stream crosses pages
    members_client.submit([purchase(f"paged-t{n}", "paged", "2026-11-17 10:00", 1000 * (n + 1)) for n in range(12)])
    ledger = members_client.ledger("paged")
    assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
    assert len(ledger) >= 12
    assert sum(e.points for e in ledger) == members_client.member("paged").points
    assert [e.seq for e in members_client.ledger("paged", after_seq=3, limit=4)] == [4, 5, 6, 7]
    assert [e.seq for e in members_client.ledger("paged", after_seq=2, limit=9)] == list(range(3, 12))


def test_publishing_a_document_past_1_mib_or_with_thousands_of_problems_is_told_in_a_few_lines(members_client):
    """An outside probe: a 5 MB comment was published and stored, and 800,000 bad entries made a
    76 MB INVALID_ARGUMENT answer."""
    client = members_client  # nothing is published: version 1 stays in force
    big = RULES.replace("version = 1", "version = 2") + "# " + "x" * (1024 * 1024) + "\n"
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(big)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (f"the document is {len(big.encode()):,} bytes; a rules document may be at "
                                      f"most 1,048,576 bytes (1 MiB): leave out comments and entries no rule needs")
    many = RULES.replace("version = 1", "version = 2").replace(
        "[points]\n", "[points]\n" + "".join(f"x{n} = 1\n" for n in range(5000)))
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(many)
    told = raised.value.details().splitlines()  # the first 50 and how many more, cut to what a header carries
    assert told[0].startswith("points.x0: unknown key")
    assert told[-1] == "… and 4,950 more problems"
    with pytest.raises(grpc.RpcError) as raised:  # the version's own problem is told first, not lost past 50
        client.publish_rules(many.replace("version = 2", "version = 1"))
    assert raised.value.details().splitlines()[0].startswith("version: ")
    assert client.rules().version == 1


def test_publishing_bad_rules_names_every_problem_and_keeps_the_version_in_force(members_client):
    client = members_client  # nothing is published: version 1 stays in force for the module's other tests
    bad = RULES.replace("version = 1", "version = 2").replace('window = "3 months"', 'window = "3 weeks"', 1)
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(bad)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == ('tiers[2].window: expected "lifetime", "N months" or "N days" '
                                      '(N from 1 to 9,999), got "3 weeks"')
    assert client.publish_rules(RULES).version == 1  # the version in force sent again: its answer was lost
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(RULES.replace("threshold = 10000\n", "threshold = 10\n"))
    differs = "version: expected a version above 1 (the version in force, whose text differs from this one's), got 1"
    assert raised.value.details() == differs
    with pytest.raises(grpc.RpcError) as raised:  # with the others (first): alone, it cost a second round (a probe)
        client.publish_rules(RULES.replace('window = "3 months"', 'window = "3 weeks"', 1))
    assert raised.value.details() == (differs + '\n'
                                      'tiers[2].window: expected "lifetime", "N months" or "N days" '
                                      '(N from 1 to 9,999), got "3 weeks"')
    unnamed = RULES.replace("version = 1", "version = 2").replace('name = "Silver"', 'name = ""').replace(
        'upgrade_to = "Silver"', 'upgrade_to = ""')
    with pytest.raises(grpc.RpcError) as raised:  # what a new version must meet, beyond what is read back
        client.publish_rules(unnamed)
    assert raised.value.details() == 'tiers[1].name: expected a non-empty name, got ""'
    assert client.rules().version == 1


def test_publishing_new_tiers_reevaluates_members_and_refuses_another_publish_meanwhile(client, caplog):
    client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(300)])
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 10\n")
    caplog.set_level(logging.INFO, logger="patron.coordinator")
    answer = client.publish_rules(easier)
    assert (answer.version, answer.reevaluating) == (2, True)
    [told] = [r for r in caplog.records if r.getMessage() == "rules published"]  # README: publishes at INFO
    assert (told.levelname, told.version, told.reevaluating) == ("INFO", 2, 300)
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(RULES.replace("version = 1", "version = 3"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    deadline = time.monotonic() + 60
    while (status := client.status()).recalculation.running:
        assert status.recalculation.members_total == 300
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert {client.member(f"m{n}").tier for n in range(300)} == {"Silver"}
    assert client.publish_rules(RULES.replace("version = 1", "version = 3")).version == 3


def test_a_publish_a_shards_death_cuts_short_is_in_force_and_reaches_the_shard_once_it_is_back(start_server):
    # the shard that died kept scoring the old version, GetRules said the old version, and the
    # answer said nothing was applied: a restart then put in force a publish told as failed
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    pid = ray.get(server.server.coordinator.actors[1].pid.remote())
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 10\n").replace(
        "per_unit = 10\n", "per_unit = 20\n", 1)
    with PatronClient(server.address, retries=0) as client:
        client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(20)])
        os.kill(pid, signal.SIGSTOP)  # it takes the publish's call, then dies with it
        killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(grpc.RpcError) as raised:
            client.publish_rules(easier)
        killer.join()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert raised.value.details().startswith("rules version 2 is published and in force, but a shard did not")
        assert client.rules().version == 2
    with PatronClient(server.address, retries=40) as client:  # at once: none scored under version 1 meanwhile
        after = client.submit([purchase(f"a{n}", f"m{n}", "2026-11-17 11:00", 2900) for n in range(20)])
        assert {r.points for r in after.results} == {40}  # 20 points a 10.00 under version 2, not 20
        deadline = time.monotonic() + 60
        while {shard.rule_version for shard in client.status().shards} != {2} or {
                client.member(f"m{n}").tier for n in range(20)} != {"Silver"}:  # re-evaluated on both shards
            assert time.monotonic() < deadline, "the shard that died was not brought to the version in force"
            time.sleep(0.2)
        while (progress := client.status().recalculation).running:
            assert time.monotonic() < deadline, "the re-evaluation did not end"
            time.sleep(0.2)
        # both shards' members: the progress went back to the restarted shard's part alone (an outside probe)
        assert (progress.members_done, progress.members_total) == (20, 20)
        assert client.publish_rules(easier).version == 2  # sent again: answered, not refused


def _business_days(client: PatronClient, date: str) -> None:
    deadline = time.monotonic() + 60
    while {shard.business_day for shard in client.status().shards} != {date}:
        assert time.monotonic() < deadline, "the midnight run cut short was not finished"
        time.sleep(0.2)


def test_a_midnight_run_a_shards_death_cuts_short_is_finished_once_it_is_back(start_server):
    # the run's answer was an error and the shards stayed on the day before, until someone ran it again
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), job_chunk=1)
    pid = ray.get(server.server.coordinator.actors[1].pid.remote())
    with PatronClient(server.address, retries=0) as client:
        client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(40)])
        os.kill(pid, signal.SIGSTOP)  # it takes the run's first step, then dies with it
        killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(grpc.RpcError) as raised:
            client.run_midnight("2026-11-18")
        killer.join()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    with PatronClient(server.address, retries=40) as client:
        _business_days(client, "2026-11-18")
        assert not client.status().midnight.error
        assert list(client.status().midnight.dates) == ["2026-11-18"]


def test_a_shard_restarted_in_the_serve_that_made_its_folder_is_not_started_empty(start_server):
    # Ray restarts an actor with the arguments it was made with, which in that serve said no data was
    # expected: a node restarted with another data root started its shard empty, and a resend of an
    # acknowledged transaction was scored again (a scale-out probe)
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    coordinator = server.server.coordinator
    pid = ray.get(coordinator.actors[1].pid.remote())
    on_one = next(m for m in (f"m{n}" for n in range(20)) if shard_of(coordinator.layout, m) == 1)
    store = server.server.config.data / "shards" / "001" / "data.mdb"
    sent = [purchase("t1", on_one, "2026-11-17 10:00", 2900)]
    with PatronClient(server.address, retries=0) as client:
        client.submit(sent)
        store.rename(store.with_name("aside.mdb"))  # the disk not mounted at the node's restart
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "no data.mdb" not in (down := client.status().shards[1].down):
            assert time.monotonic() < deadline, f"the shard does not say its data is missing: {down!r}"
            assert not client.status().shards[1].ready, "the shard was started empty"
            time.sleep(0.2)
        assert not store.exists()
        store.with_name("aside.mdb").replace(store)  # mounted
        while not all(shard.ready for shard in client.status().shards):
            assert time.monotonic() < deadline, "the shard did not open its data once it could"
            time.sleep(0.2)
        assert client.submit(sent).results[0].outcome == pb.OUTCOME_DUPLICATE


def test_a_shard_whose_restart_cannot_open_its_data_says_why_and_comes_back_once_it_can(start_server):
    # Ray does not restart an actor whose start raised: the shard stayed down until patron was
    # restarted, though its disk was fine again a minute later
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    coordinator = server.server.coordinator
    pid = ray.get(coordinator.actors[1].pid.remote())
    members = [f"m{n}" for n in range(20)]
    on_one = next(m for m in members if shard_of(coordinator.layout, m) == 1)
    store = server.server.config.data / "shards" / "001" / "data.mdb"
    with PatronClient(server.address, retries=0) as client:
        client.submit([purchase(f"t{n}", m, "2026-11-17 10:00", 2900) for n, m in enumerate(members)])
        before = {m: client.member(m).points for m in members}
        store.rename(store.with_name("aside.mdb"))
        store.write_bytes(b"\xab" * 65536)  # not an LMDB file: its restart fails to open it
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "cannot open its data" not in (down := client.status().shards[1].down):
            assert time.monotonic() < deadline, f"the shard does not say why it is down: {down!r}"
            time.sleep(0.2)
        assert "MDB_INVALID" in down or "Invalid" in down, down
        with pytest.raises(grpc.RpcError) as raised:
            client.submit([purchase("late", on_one, "2026-11-17 11:00", 2900)])
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot open its data" in raised.value.details()
        with pytest.raises(ShardUnavailableError, match="cannot open its data"):  # what a midnight run says,
            server._run(coordinator.status(), timeout=30)  # not a failure to read its empty business day
        store.with_name("aside.mdb").replace(store)  # the disk is mended
        while not all(shard.ready for shard in client.status().shards):
            assert time.monotonic() < deadline, "the shard did not open its data once it could"
            time.sleep(0.2)
        assert {m: client.member(m).points for m in members} == before
        assert client.submit([purchase("late", on_one, "2026-11-17 11:00", 2900)]).results[0].points > 0
    server.stop()
    store.write_bytes(b"\xab" * 65536)
    with pytest.raises(PatronError, match=r"^cannot start: shard 1 cannot open its data \(.*MDB_INVALID"):
        start_server(data=server.server.config.data)  # at a start it is told at once, not served half
    store.unlink()  # a disk not mounted, a node given another data root: not made anew, empty (an outside probe)
    with pytest.raises(PatronError, match=r"^cannot start: shard 1 cannot open its data \(FileNotFoundError: no data"):
        start_server(data=server.server.config.data)
    assert not store.exists()


def test_shards_left_on_different_business_days_are_brought_to_the_latest(start_server):
    # as a server killed between one shard's end of the run and the other's leaves them
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    shard = server.server.coordinator.actors[0]
    with PatronClient(server.address) as client:
        client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(20)])
        ray.get(shard.midnight_begin.remote(parse_day("2026-11-18")))
        while not ray.get(shard.midnight_step.remote(100))[2]:
            pass
        _business_days(client, "2026-11-18")
        assert list(client.status().midnight.dates) == ["2026-11-18"]


def test_anomalies_of_a_run_cut_short_after_one_shards_steps_are_still_reported(start_server, tmp_path):
    # the finishing run asked only the shard still behind for its rows' days: the report of a day
    # before the closed one, whose rows the other shard had written before the server died, was never made
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100"))
    server = start_server(shards=2, rules=rules, start_date=parse_day("2026-11-18"), data=tmp_path / "data")
    shard = server.server.coordinator.actors[0]
    layout = even_layout(2)
    members = [m for m in (f"m{n}" for n in range(24)) if shard_of(layout, m) == 0]  # none flagged on shard 1
    with PatronClient(server.address) as client:
        client.submit([purchase(f"{m}-{hour}", m, f"2026-11-16 {hour}:00", 9000) for m in members
                       for hour in (10, 11)])  # late, within max_lateness: flagged on the 16th
        ray.get(shard.midnight_begin.remote(parse_day("2026-11-19")))  # as the run did before the server died
        while not ray.get(shard.midnight_step.remote(100))[2]:
            pass
        assert ray.get(shard.reports_owed.remote()) == ["2026-11-16"]
        _business_days(client, "2026-11-19")
        deadline = time.monotonic() + 30
        while client.status().midnight.running or not client.status().midnight.dates:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        served = sorted(r.member_id for r in client.anomaly_report("2026-11-16").rows)
    assert served == sorted(members)
    lines = (tmp_path / "data" / "reports" / "anomalies-2026-11-16.jsonl").read_text().splitlines()
    assert sorted(msgspec.json.decode(line)["member_id"] for line in lines) == served
    assert ray.get(shard.reports_owed.remote()) == []


def test_the_reports_of_a_day_closed_by_a_run_the_servers_end_cut_short_are_written_after_a_restart(start_server,
                                                                                                       tmp_path):
    # every shard had run the date, the server stopped before the reports: the restart found no run
    # to finish, and the closed day's reused ids, and its anomaly report when empty, were lost for good
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    with PatronClient(server.address) as client:
        client.submit([purchase("same", "m1", "2026-11-17 10:00", 2900),
                       purchase("same", "m2", "2026-11-17 11:00", 2900)])
        for shard in server.server.coordinator.actors:  # as the run did before the server stopped
            ray.get(shard.midnight_begin.remote(parse_day("2026-11-18")))
            while not ray.get(shard.midnight_step.remote(100))[2]:
                pass
    server.stop()
    reports = tmp_path / "data" / "reports"
    assert not list(reports.glob("*-2026-11-17.jsonl"))  # the server stopped before them
    server = start_server(data=tmp_path / "data")
    deadline = time.monotonic() + 30
    while not (reports / "reused-ids-2026-11-17.jsonl").exists():
        assert time.monotonic() < deadline, "the closed day's reports were not written"
        time.sleep(0.1)
    assert msgspec.json.decode((reports / "reused-ids-2026-11-17.jsonl").read_text()) == {
        "txn_id": "same", "members": ["m1", "m2"]}
    assert (reports / "anomalies-2026-11-17.jsonl").read_text() == ""  # written: "none", not "not run"
    deadline = time.monotonic() + 30
    while any(ray.get(shard.closed_owed.remote()) for shard in server.server.coordinator.actors):
        assert time.monotonic() < deadline, "the shards still owe the closed day's reports"
        time.sleep(0.1)


def test_anomaly_reports_a_run_could_not_write_are_written_by_the_watch(start_server, tmp_path, monkeypatch):
    # every shard had run the date, so nothing was owed: the report waited for the next date's run
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100"))
    server = start_server(rules=rules, start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    folder, failures = server.server.coordinator.folder, []
    write_report = folder.write_report

    def full_once(day: str, rows: list) -> object:
        if not failures:
            failures.append(day)
            raise OSError(28, "No space left on device (planted)")
        return write_report(day, rows)

    monkeypatch.setattr(folder, "write_report", full_once)
    report = tmp_path / "data" / "reports" / "anomalies-2026-11-17.jsonl"
    # the server's answer to one call: a client that retries gets past the one failure
    with PatronClient(server.address, retries=0) as client:
        client.submit([purchase("t1", "m1", "2026-11-17 10:00", 9000), purchase("t2", "m1", "2026-11-17 11:00", 9000)])
        with pytest.raises(grpc.RpcError) as raised:
            client.run_midnight("2026-11-18")
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, raised.value.details()
        assert "the data folder's disk is full" in raised.value.details()
        assert failures == ["2026-11-17"]
        assert not report.exists()
        deadline = time.monotonic() + 30
        runs = server.server.metrics.registry
        while not report.exists() or not runs.get_sample_value("patron_midnight_runs_total"):
            assert time.monotonic() < deadline, "the watch did not finish the run's end (its report, its count)"
            time.sleep(0.1)
        # and the rest of the run's end: counted once, its error cleared (an outside probe found neither)
        assert runs.get_sample_value("patron_midnight_runs_total") == 1
        assert client.status().midnight.error == ""
    assert [msgspec.json.decode(line)["member_id"] for line in report.read_text().splitlines()] == ["m1"]


def test_a_run_of_several_dates_cut_short_at_a_dates_reports_is_finished_and_counts_every_date(
        start_server, tmp_path, monkeypatch):
    # the watch began a fresh run: the dates the cut run finished were never counted, and the report
    # of the day its failure left unwritten was never made (an outside probe of the last round)
    server = start_server(start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    folder, failures = server.server.coordinator.folder, []
    write_report = folder.write_report

    def full_once(day: str, rows: list) -> object:
        if day == "2026-11-18" and not failures:
            failures.append(day)
            raise OSError(28, "No space left on device (planted)")
        return write_report(day, rows)

    monkeypatch.setattr(folder, "write_report", full_once)
    reports = tmp_path / "data" / "reports"
    # the server's answer to one call: a client that retries gets past the one failure
    with PatronClient(server.address, retries=0) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.run_midnight("2026-11-20")
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, raised.value.details()
        runs = server.server.metrics.registry
        deadline = time.monotonic() + 30
        while client.status().midnight.running or client.status().midnight.error or (
                runs.get_sample_value("patron_midnight_runs_total") != 3):
            assert time.monotonic() < deadline, (client.status().midnight,
                                                 runs.get_sample_value("patron_midnight_runs_total"))
            time.sleep(0.1)
        assert list(client.status().midnight.dates) == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert sorted(p.name for p in reports.glob("anomalies-*")) == [
        f"anomalies-2026-11-{day}.jsonl" for day in (17, 18, 19)]


def test_a_checkpoint_that_failed_on_a_shard_is_told_once_not_sent_again(start_server, tmp_path, monkeypatch,
                                                                         caplog):
    # a checkpoint probe: a shard killed while copying answered UNAVAILABLE, which the client takes for
    # a server it did not reach: it sent the checkpoint again, and the operator saw it succeed
    import actors.coordinator
    from engine.errors import ShardUnavailableError

    def shard_died(*args: object, **kwargs: object) -> object:
        raise ShardUnavailableError("shard 1 died while copying (planted)")

    monkeypatch.setattr(actors.coordinator, "finish_checkpoint", shard_died)
    server = start_server(start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    with PatronClient(server.address, retries=2) as client, pytest.raises(grpc.RpcError) as failed:
        client.checkpoint()
    assert failed.value.code() == grpc.StatusCode.ABORTED
    assert "shard 1 died while copying (planted)" in failed.value.details()
    assert server.server.metrics.registry.get_sample_value("patron_checkpoint_failures_total") == 1
    # serve's log says so too, once (an SRE probe: only the caller was told)
    logged = [r for r in caplog.records if r.getMessage().startswith("a checkpoint asked for failed")]
    assert len(logged) == 1
    assert "shard 1 died while copying (planted)" in logged[0].error


def test_a_checkpoint_that_fails_after_a_midnight_run_does_not_fail_the_run(start_server, tmp_path, monkeypatch):
    # an outside probe: the run was done, yet it answered "stopped short" with Ray's traceback, its
    # partial copy stayed on the full disk, and the next run would have taken it up as a cut run
    import actors.coordinator

    def no_room(*args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device (planted)")

    monkeypatch.setattr(actors.coordinator, "finish_checkpoint", no_room)
    server = start_server(start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    with PatronClient(server.address) as client:
        assert list(client.run_midnight("2026-11-18").dates) == ["2026-11-18"]
        assert client.status().midnight.error == ""
    metrics = server.server.metrics.registry
    assert metrics.get_sample_value("patron_midnight_runs_total") == 1
    assert metrics.get_sample_value("patron_checkpoint_failures_total") == 1
    failed = metrics.get_sample_value("patron_checkpoint_last_failure_timestamp_seconds")
    assert abs(failed - time.time()) < 600
    note = tmp_path / "data" / "checkpoints" / "last-failure.json"
    assert "No space left on device (planted)" in note.read_text()
    assert list((tmp_path / "data" / "checkpoints").iterdir()) == [note]  # no partial copy left

    # a restart does not hide it (the failures' count starts again at 0), and a checkpoint that
    # succeeds clears it
    server.stop()
    server = start_server(data=tmp_path / "data")
    metrics = server.server.metrics.registry
    assert metrics.get_sample_value("patron_checkpoint_failures_total") == 0
    assert metrics.get_sample_value("patron_checkpoint_last_success_timestamp_seconds") == 0
    assert metrics.get_sample_value("patron_checkpoint_last_failure_timestamp_seconds") == failed
    monkeypatch.undo()
    with PatronClient(server.address) as client:
        client.checkpoint()
    assert metrics.get_sample_value("patron_checkpoint_last_failure_timestamp_seconds") == 0
    assert not note.exists()


def test_a_midnight_run_asked_for_during_a_re_evaluation_waits_for_it(client):
    # it began on the shards at once and replaced their re-evaluation: members not yet visited
    # kept their tiers until a restart
    client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(300)])
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 10\n")
    assert client.publish_rules(easier).reevaluating
    assert list(client.run_midnight("2026-11-18").dates) == ["2026-11-18"]
    assert {client.member(f"m{n}").tier for n in range(300)} == {"Silver"}


def test_a_publish_that_fails_after_its_checks_leaves_the_next_publish_free(client, monkeypatch):
    # A document the checks passed once failed in building its programme (a NUL in the timezone,
    # now refused by name), and every later publish was refused as still being applied.
    from actors import coordinator

    built = coordinator.Programme

    def failing(rules: object) -> object:
        if rules.version == 2:
            raise ValueError("planted: a failure the checks did not foresee")
        return built(rules)

    monkeypatch.setattr(coordinator, "Programme", failing)
    with pytest.raises(grpc.RpcError) as raised:
        client.publish_rules(RULES.replace("version = 1", "version = 2"))
    assert "planted" in raised.value.details()
    assert not client.status().recalculation.running
    assert client.publish_rules(RULES.replace("version = 1", "version = 3")).version == 3


def test_a_publish_in_force_is_reevaluated_even_when_what_follows_it_fails(start_server):
    # a failure after the shards took the new version (a node gateway's hook, the coupon keeper)
    # once answered an error for a publish in force and left its members never re-evaluated
    server = start_server()

    async def unreachable(published: object) -> None:
        raise RuntimeError("planted: a node gateway out of reach")

    server.server.coordinator.published_hooks.append(unreachable)
    with PatronClient(server.address) as client:
        client.submit([purchase(f"t{n}", f"m{n}", "2026-11-17 10:00", 2900) for n in range(30)])
        easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 10\n")
        answer = client.publish_rules(easier)
        assert (answer.version, answer.reevaluating) == (2, True)
        deadline = time.monotonic() + 60
        while client.status().recalculation.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert {client.member(f"m{n}").tier for n in range(30)} == {"Silver"}
        assert client.publish_rules(RULES.replace("version = 1", "version = 3")).version == 3


def test_a_publish_that_removes_a_tier_keeps_older_entries_in_their_versions_names_and_records_the_move(
        start_server):
    server = start_server(shards=2, start_date=parse_day("2026-12-01"), job_chunk=1)
    with PatronClient(server.address) as client:
        client.enroll("G1")
        recharge = {"txn_id": "r1", "member_id": "G1", "occurred_at_ms": ms("2026-12-01 10:00"), "kind": "recharge",
                    "amount_minor": 50000}
        assert client.submit([recharge]).results[0].outcome == pb.OUTCOME_ACCEPTED  # its bonus: Silver
        imported = pb.OpeningBalance(member=pb.EnrollRequest(member_id="S1"), tier="Silver")
        assert client.import_members(pb.ImportRequest(import_id="i1", members=[imported])).imported == 1
        silver = RULES[RULES.index('[[tiers]]\nname = "Silver"'):RULES.index('[[tiers]]\nname = "Gold"')]
        client.publish_rules(RULES.replace("version = 1", "version = 2").replace(silver, "")
                             .replace('upgrade_to = "Silver"', ""))
        deadline = time.monotonic() + 60
        while client.status().recalculation.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        moves = {member: [(e.kind, e.rule_version, e.cause, e.ref, e.tier_from, e.tier_to)
                          for e in client.ledger(member) if e.tier_to]
                 for member in ("G1", "S1")}
        tiers = {member: client.member(member).tier for member in ("G1", "S1")}
    removed = ("tier", 2, "rules", "v2", "Silver", "Basic")  # the publish's move, in the words of both versions
    assert moves == {"G1": [("tier", 1, "txn", "r1", "Basic", "Silver"), removed],
                     "S1": [("opening", 1, "import", "i1", "", "Silver"), removed]}
    assert tiers == {"G1": "Basic", "S1": "Basic"}


def test_midnight_runs_every_missed_date_in_order_once(client):
    client.submit([purchase("t1", "m1", "2026-11-17 10:00", 2900)])
    first = client.run_midnight("2026-11-20")
    assert list(first.dates) == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert list(client.run_midnight("2026-11-20").dates) == []
    assert {s.business_day for s in client.status().shards} == {"2026-11-20"}


def test_the_anomaly_report_is_made_at_midnight_and_kept_in_the_data_folder(start_server, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100"))
    server = start_server(rules=rules, start_date=parse_day("2026-11-17"), data=tmp_path / "data")
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m1", "2026-11-17 10:00", 9000), purchase("t2", "m1", "2026-11-17 11:00", 9000),
                       purchase("t3", "m2", "2026-11-17 11:00", 900)])
        with pytest.raises(grpc.RpcError) as not_yet:  # it answered no rows: "no anomalies" (an outside probe)
            client.anomaly_report("2026-11-17")
        assert not_yet.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "made by the midnight run that closes that day" in not_yet.value.details()
        assert client.run_midnight("2026-11-18").anomalies == 1
        report = client.anomaly_report("2026-11-17")
    assert [(r.member_id, r.points, list(r.transactions)) for r in report.rows] == [("m1", 180, ["t1", "t2"])]
    lines = (tmp_path / "data" / "reports" / "anomalies-2026-11-17.jsonl").read_text().splitlines()
    assert lines == ['{"member_id":"m1","day":"2026-11-17","points":180,"transactions":["t1","t2"]}']
    with PatronClient(server.address) as client:  # a day without anomalies has its report too, empty
        assert client.run_midnight("2026-11-19").anomalies == 0
    assert (tmp_path / "data" / "reports" / "anomalies-2026-11-18.jsonl").read_text() == ""


def test_bulk_enrollment_answers_in_order_and_a_bad_record_sinks_nothing_else(members_client):
    before = sum(s.members for s in members_client.status().shards)
    records = [{"member_id": f"b{n}", "channel": "pos", "birthday": "03-05"} for n in range(30)]
    answer = members_client.enroll_many([*records, {"member_id": "bulk-bad", "birthday": "13-45"},
                                         {"member_id": "b0", "source": "shop"}])
    assert [m.member.member_id for m in answer.members[:30]] == [f"b{n}" for n in range(30)]
    assert all(m.created for m in answer.members[:30])
    assert answer.members[30].error == 'birthday: expected "MM-DD" or "YYYY-MM-DD", got \'13-45\''
    assert (answer.members[31].created, answer.members[31].member.source) == (False, "shop")
    assert members_client.member("bulk-bad") is None
    assert sum(s.members for s in members_client.status().shards) == before + 30


def test_member_show_with_the_ledger_says_why_a_purchase_earned_its_points(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-12-03"))
    with PatronClient(server.address) as client:
        assert client.submit([purchase("t1", "m1", "2026-12-03 10:00", 12000)]).results[0].points == 144
        [earned] = [e for e in client.ledger("m1") if e.kind == "earn"]
    why = "120 from 'spend 10 per 10.00' × 1.2 'winter campaign'"
    assert (earned.points, earned.why) == (144, why)
    shown = subprocess.run([sys.executable, "-m", "cli.main", "member", "show", "m1", "--ledger", "--address",
                            server.address], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert why in shown.stdout


def test_each_entrys_why_names_the_rules_version_that_scored_it_also_after_a_restart(start_server):
    """Entries store the parts of their why; the line is made when read, with the names and
    factors of the entry's own rules version (kept in the data folder), not those in force."""
    renamed = (RULES.replace("version = 1", "version = 2", 1).replace('"winter campaign"', '"winter sale"')
               .replace("factor = 1.2", "factor = 1.5"))
    server = start_server(shards=2, start_date=parse_day("2026-12-03"))
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m1", "2026-12-03 10:00", 12000)])
        client.publish_rules(renamed)
        client.submit([purchase("t2", "m1", "2026-12-03 11:00", 12000)])
    server.stop()
    restarted = start_server(shards=2)  # the same folder; the example file is version 1, the folder keeps 2
    with PatronClient(restarted.address) as client:
        earned = {e.ref: (e.rule_version, e.points, e.why) for e in client.ledger("m1") if e.kind == "earn"}
    assert earned == {"t1": (1, 144, "120 from 'spend 10 per 10.00' × 1.2 'winter campaign'"),
                      "t2": (2, 180, "120 from 'spend 10 per 10.00' × 1.5 'winter sale'")}


def test_a_stop_with_a_shard_that_does_not_answer_ends_and_names_it(start_server, monkeypatch):
    """A shard stopped or wedged (not dead, so Ray never fails its calls) held `patron serve`'s stop
    forever at the shards' close, and so would the coupon keeper; now the stop ends and says which
    shard did not close."""
    import actors.coordinator

    monkeypatch.setattr(actors.coordinator, "CLOSE_SECONDS", 2.0)
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    keeper = server.server.coordinator.keeper  # the coupon grants' actor (the example rules have coupons)
    pids = [ray.get(server.server.coordinator.actors[1].pid.remote()), ray.get(keeper.pid.remote())]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        server.stop(grace=1)
        assert time.monotonic() - started < 30
        assert server.server.unclosed == [1]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


def test_a_rules_file_edited_without_a_new_version_is_not_published_at_start_and_says_so(start_server, tmp_path,
                                                                                        caplog):
    """`--rules` of an edited file that kept its version started with the old rules in force and
    said nothing; `patron rules publish` of the same file is refused (an outside probe)."""
    first = start_server()
    first.stop()
    edited = tmp_path / "edited.toml"
    edited.write_text(EXAMPLE_RULES.read_text().replace("per_unit = 10\n", "per_unit = 20\n", 1))
    with caplog.at_level(logging.WARNING, logger="patron.coordinator"):
        again = start_server(rules=edited)
    with PatronClient(again.address) as client:
        assert client.rules().rules_toml == EXAMPLE_RULES.read_text()
    [warned] = [r.getMessage() for r in caplog.records if "its text differs" in r.getMessage()]
    assert warned == (f"{edited} is version 1 as the version in force, but its text differs: it was not published, "
                      f"the version in force stays; give it a higher version to publish it")


def test_a_run_over_many_dates_logs_their_span_not_every_date(client, caplog):
    # a test system's run over years made one log line of 38 KB (an SRE probe)
    caplog.set_level(logging.INFO, "patron")
    assert len(client.run_midnight("2026-11-29").dates) == 12
    [logged] = [record for record in caplog.records if record.getMessage() == "midnight run"]
    assert logged.dates == ["2026-11-18", "... 10 dates ...", "2026-11-29"]
