"""`patron import` against a real server: rejected rows reported with their lines and reasons,
imported members as the engine opens them, and an import that survives the importing client's
and the server's `kill -9` with every row applied once."""

import csv
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest

from cli.importing import ImportOptions, run_import
from client.import_file import read_rows
from engine.book import Book
from engine.calendar import iso, parse_day
from engine.opening import open_member, opening_problem
from engine.programme import Programme
from engine.types import NEVER
from engine.validation import load_rules
from tests.conftest import EXAMPLE_RULES, TEST_DAY

HEADER = "member_id,tier,tier_valid_until,points,stored_value,bonus_value,growth,status,channel,birthday\n"
BAD = {  # line -> (row, reason)
    3: ("b1,Platinum,,10,0,0,0,,,", "unknown_tier"),
    5: ("b2,Gold,,-4,0,0,0,,,", "negative_amount"),
    6: ("b3,Gold,2026-01-01,4,0,0,0,,,", "bad_tier_valid_until"),
    8: ("ok0,Basic,,1,0,0,0,,,", "duplicate_member"),
    9: ("b4,Basic,,x,0,0,0,,,", "bad_number"),
    10: ("b5,Basic,,1,0,0", "malformed"),
    11: ("b6,Basic,,5@2026-11-01,0,0,0,,,", "points_expired"),
    12: ("b7,Basic,,,0,0,0,closed,,", "bad_status"),
}


def good_row(n: int) -> str:
    tier = ("Basic", "Silver", "Gold")[n % 3]
    until = "2027-03-31" if tier == "Gold" and n % 2 else ""
    lots = f"{n % 700}@2027-01-01;{n % 90}@never" + (f";{n % 13}" if n % 5 == 0 else "")
    status = "frozen" if n % 17 == 0 else ""
    birthday = f"{n % 12 + 1:02d}-{n % 28 + 1:02d}" if n % 4 else ""
    return f"ok{n},{tier},{until},{lots},{n * 7 % 10_000},{n % 300},{n * 3 % 5_000},{status},pos,{birthday}"


def write_file(path: Path, good: int) -> Path:
    """`good` valid rows, with the bad ones at their lines (line 1 is the header)."""
    lines, n = [HEADER.strip()], 0
    while len(lines) < 1 + good + len(BAD):
        line = len(lines) + 1
        if line in BAD:
            lines.append(BAD[line][0])
        else:
            lines.append(good_row(n))
            n += 1
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_members(path: Path) -> dict[str, dict]:
    """What the engine makes of the file's valid rows, opened on the test's business day."""
    book = Book(Programme(load_rules(EXAMPLE_RULES.read_text())), today=parse_day(TEST_DAY))
    for row in read_rows(path, "csv"):
        if row.message is None or row.member_id in book.members:
            continue
        opening = row.message
        if opening_problem(book, opening) is None:
            open_member(book, opening, "expected", book.today)
    names = book.programme.ladder.names
    return {m.member_id: {"tier": names[m.tier], "tier_valid_until": iso(m.tier_until) if m.tier_until else "",
                          "points": m.points, "growth": m.growth, "stored_value": m.stored_value,
                          "bonus_value_minor": m.bonus_value, "status": m.status,
                          "lots": [(iso(lot.expires) if lot.expires < NEVER else "never", lot.amount)
                                   for lot in m.lots]}
            for m in book.members.values()}


def served_member(client, member_id: str) -> tuple[dict, list]:
    member = client.member(member_id)
    ledger = client.ledger(member_id)
    lots = [(lot.expires, lot.points) for lot in ledger[0].lots] if ledger else []
    return {"tier": member.tier, "tier_valid_until": member.tier_valid_until, "points": member.points,
            "growth": member.growth, "stored_value": member.stored_value,
            "bonus_value_minor": member.bonus_value_minor, "status": member.status, "lots": lots}, ledger


@pytest.fixture(scope="module")
def import_server(ray_session, tmp_path_factory):
    """For the tests that import into a server and read it back: one two-shard server for all of
    them (each imports members of its own)."""
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "imports")


def report_rows(path: Path) -> list[tuple[int, str]]:
    with path.open() as file:
        return [(int(row["line"]), row["reason"]) for row in csv.DictReader(file)]


def test_an_import_reports_each_rejected_row_by_line_and_imports_the_rest_as_the_engine_would(
        import_server, tmp_path):
    from client import PatronClient

    server = import_server
    source = write_file(tmp_path / "members.csv", good=60)
    client = PatronClient(server.address, timeout=60)
    state = run_import(client, ImportOptions(file=source, chunk=25), say=lambda text: None)
    assert report_rows(tmp_path / "members.csv.rejected.csv") == [(line, BAD[line][1]) for line in sorted(BAD)]
    assert (state.rows, state.imported, state.imported_before) == (60 + len(BAD), 60, 0)
    assert state.rejected == {reason: 1 for _, reason in BAD.values()}
    expected = expected_members(source)
    for member_id in ("ok0", "ok5", "ok17", "ok31", "ok59"):
        served, ledger = served_member(client, member_id)
        assert served == expected[member_id]
        assert [(e.kind, e.cause, e.ref) for e in ledger] == [("opening", "import", state.import_id)]
    again = run_import(client, ImportOptions(file=source, restart=True, import_id="another"), say=lambda text: None)
    assert (again.imported, again.imported_before, again.rejected["already_imported"]) == (0, 0, 60)


def _patron_import(address: str, source: Path, *extra: str, retries: int = 8) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "import", str(source), "--address", address,
                             "--chunk", "50", "--in-flight", "2", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PATRON_RETRIES": str(retries)})


def _wait_for_progress(progress: Path, rows: int, importer: subprocess.Popen, timeout: float = 120) -> int:
    """Rows the progress file vouches for, once at least `rows` (the importer still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if progress.exists():
            done = msgspec.json.decode(progress.read_bytes())["rows"]
            if done >= rows:
                return done
        if importer.poll() is not None:
            pytest.fail(f"the import ended before it could be killed: {importer.communicate()}")
        time.sleep(0.02)
    pytest.fail("the import made no progress")


def test_an_import_killed_with_its_client_and_then_its_server_resumes_and_applies_every_row_once(
        serve_process, tmp_path):
    source = write_file(tmp_path / "members.csv", good=1_500)
    progress = tmp_path / "members.csv.import-progress"
    data = tmp_path / "data"
    server = serve_process(data, "--shards", "2", rules=EXAMPLE_RULES)

    first = _patron_import(server.address, source)  # the importing client dies mid-way
    _wait_for_progress(progress, 200, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)

    second = _patron_import(server.address, source, retries=1)  # then the server, with chunks in flight
    settled = msgspec.json.decode(progress.read_bytes())["rows"]
    _wait_for_progress(progress, settled + 200, second)
    server.kill()
    failure = second.communicate(timeout=120)[1]
    assert second.returncode == 1
    assert "patron:" in failure

    server = serve_process(data, rules=EXAMPLE_RULES)
    last = subprocess.run([sys.executable, "-m", "cli.main", "import", str(source), "--address", server.address],
                          capture_output=True, text=True, timeout=300, check=False)
    assert last.returncode == 3, last.stderr
    state = msgspec.json.decode(progress.read_bytes())
    assert state["finished"]
    assert state["rows"] == 1_500 + len(BAD)
    assert state["imported"] + state["imported_before"] == 1_500
    assert report_rows(tmp_path / "members.csv.rejected.csv") == [(line, BAD[line][1]) for line in sorted(BAD)]

    client = server.client()
    expected = expected_members(source)
    assert sum(shard.members for shard in client.status().shards) == len(expected)
    with ThreadPoolExecutor(8) as pool:  # 3,000 reads: one after another they took 10 s
        answers = pool.map(lambda member_id: served_member(client, member_id), expected)
        for (member_id, want), (served, ledger) in zip(expected.items(), answers, strict=True):
            assert served == want, member_id
            assert [entry.kind for entry in ledger] == ["opening"], member_id


def test_rows_come_as_compact_rows_or_as_protobuf_members_alike_and_malformed_rows_change_nothing(import_server):
    """The compact `rows` patron import sends and the protobuf `members` a hand-written client may
    send import the same members; rows that are not the documented arrays are INVALID_ARGUMENT."""
    import grpc

    from client import PatronClient
    from engine.opening import Opening, OpeningLot
    from proto import patron_pb2 as pb

    client = PatronClient(import_server.address, timeout=60)
    before = sum(shard.members for shard in client.status().shards)  # the module's other tests' members

    def opening(member_id: str, tier: str = "Gold") -> Opening:
        return Opening(member_id=member_id, tier=tier, tier_valid_until="2027-03-31", stored_value=700,
                       bonus_value=30, growth=1_200, status="frozen", channel="web", birthday="04-05",
                       points=[OpeningLot(500, "2027-01-01"), OpeningLot(40, "never"), OpeningLot(9)])

    def message(row: Opening) -> pb.OpeningBalance:
        return pb.OpeningBalance(
            member=pb.EnrollRequest(member_id=row.member_id, channel=row.channel, birthday=row.birthday),
            tier=row.tier, tier_valid_until=row.tier_valid_until, stored_value=row.stored_value,
            bonus_value=row.bonus_value, growth=row.growth, status=row.status,
            points=[pb.LotChange(points=lot.points, expires=lot.expires) for lot in row.points])

    compact = [opening(f"r{n}") for n in range(6)] + [opening("r-bad", tier="Platinum")]
    answer = client.import_future(pb.ImportRequest(import_id="compact", rows=msgspec.msgpack.encode(compact))).result()
    assert (answer.imported, [(r.index, r.reason) for r in answer.rejected]) == (6, [(6, "unknown_tier")])
    members = [message(opening(f"p{n}")) for n in range(6)] + [message(opening("p-bad", tier="Platinum"))]
    answer = client.import_future(pb.ImportRequest(import_id="protobuf", members=members)).result()
    assert (answer.imported, [(r.index, r.reason) for r in answer.rejected]) == (6, [(6, "unknown_tier")])
    for n in range(6):
        assert served_member(client, f"r{n}")[0] == served_member(client, f"p{n}")[0]
    lots = served_member(client, "r0")[0]["lots"]
    assert (len(lots), lots[0], lots[-1]) == (3, ("2027-01-01", 500), ("never", 40))

    wrong_type = msgspec.msgpack.encode([["w1", "Gold", "", "500@2027-01-01"]])  # points as text
    too_long = msgspec.msgpack.encode([["w2", "Gold", "", [], 0, 0, 0, "", "", "", "", "", "", "x", "y"]])  # 15 of 13
    long_lot = msgspec.msgpack.encode([["w3", "", "", [[1, "never", 3]]]])  # a lot of 3 values: the 3 was dropped
    for request in (pb.ImportRequest(import_id="bad", rows=b"\x93\xa1x"),
                    pb.ImportRequest(import_id="bad", rows=wrong_type),
                    pb.ImportRequest(import_id="bad", rows=too_long),  # was imported, its extra values dropped
                    pb.ImportRequest(import_id="bad", rows=long_lot),
                    pb.ImportRequest(import_id="bad", rows=b"\x91\x91\xa2\xff\xfe"),  # a string not UTF-8: was INTERNAL
                    pb.ImportRequest(import_id="bad", rows=msgspec.msgpack.encode(compact), members=members)):
        with pytest.raises(grpc.RpcError) as refused:
            client.import_future(request).result()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert sum(shard.members for shard in client.status().shards) == before + 12


def test_a_json_number_beyond_every_range_is_a_rejected_row_and_the_import_goes_on(import_server, tmp_path):
    from client import PatronClient

    server = import_server
    source = tmp_path / "members.jsonl"
    source.write_text('{"member_id": "L1"}\n{"member_id": "L2", "stored_value": 1e400}\n'
                      '{"member_id": "L3", "points": [{"points": 1e400, "expires": "never"}]}\n{"member_id": "L4"}\n')
    done = subprocess.run([sys.executable, "-m", "cli.main", "import", str(source), "--address", server.address],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "4 rows: 2 imported, 0 imported before (resumed), 2 rejected (bad_field 2)" in done.stdout
    assert report_rows(tmp_path / "members.jsonl.rejected.csv") == [(2, "bad_field"), (3, "bad_field")]
    with PatronClient(server.address) as client:
        assert [client.member(m) is not None for m in ("L1", "L2", "L3", "L4")] == [True, False, False, True]


def test_an_import_finished_into_one_data_folder_is_not_taken_as_done_in_another(start_server, tmp_path):
    # the progress file beside the CSV said "already finished", the command said every row was in
    # and exited 0, and the second server had none of them
    from client import PatronClient
    from engine.errors import PatronError

    source = write_file(tmp_path / "members.csv", good=10)
    first = start_server(data=tmp_path / "first")
    with PatronClient(first.address) as client:
        assert run_import(client, ImportOptions(file=source), say=lambda text: None).finished
        first_id = client.status().data_id
    first.stop()
    second = start_server(data=tmp_path / "second")
    with PatronClient(second.address) as client:
        assert client.status().data_id not in ("", first_id)
        with pytest.raises(PatronError, match="into another data folder than this server's"):
            run_import(client, ImportOptions(file=source), say=lambda text: None)
        assert client.member("ok0") is None
        assert run_import(client, ImportOptions(file=source, restart=True), say=lambda text: None).imported == 10
        assert client.member("ok0") is not None


def test_an_edited_file_under_its_own_import_id_is_not_taken_as_done_and_a_moved_report_is_refused(
        start_server, tmp_path):
    # an outside probe: the edit was taken as finished (exit 0, the new row never imported), and a
    # report moved away between runs was padded with zeros up to the saved offset
    from client import PatronClient
    from engine.errors import PatronError

    source = write_file(tmp_path / "members.csv", good=3)
    server = start_server()
    with PatronClient(server.address) as client:
        options = ImportOptions(file=source, import_id="migration-1")
        assert run_import(client, options, say=lambda text: None).imported == 3
        source.write_text(source.read_text() + "late-1,,,7,0,0,0,,,\n")
        with pytest.raises(PatronError, match="it has changed since: pass --restart"):
            run_import(client, options, say=lambda text: None)
        state = run_import(client, ImportOptions(file=source, import_id="migration-2", restart=True),
                           say=lambda text: None)
        assert (state.imported, client.member("late-1").points) == (1, 7)
        progress = source.with_name(source.name + ".import-progress")
        saved = msgspec.json.decode(progress.read_bytes())
        saved.update(finished=False, report_bytes=40, offset=len(source.read_bytes().splitlines()[0]) + 1, line=2)
        progress.write_bytes(msgspec.json.encode(saved))
        source.with_name(source.name + ".rejected.csv").unlink()
        with pytest.raises(PatronError, match="holds less than the progress file vouches for"):
            run_import(client, ImportOptions(file=source, import_id="migration-2"), say=lambda text: None)
        # id-less rows were the server's bad_member_id once, then "duplicate_member" of the first
        idless = tmp_path / "idless.csv"
        idless.write_text(HEADER + ",,,1,0,0,0,,,\n" * 3)
        assert run_import(client, ImportOptions(file=idless), say=lambda text: None).rejected == {"bad_member_id": 3}
