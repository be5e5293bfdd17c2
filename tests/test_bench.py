"""`patron bench`: a small ingest run end to end, and the /proc accounting it rests on."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.ingest import steady_rate
from bench.machine import (
    TICKS_PER_SECOND,
    bytes_written,
    cpu_seconds_between,
    parse_stat,
    processes,
    role,
    tree,
    tree_cpu_ticks,
    tree_rss_bytes,
)
from bench.soak import Sample, _p99_early_and_late, _per_minute, _whole_minutes
from bench.streams import renamed, write_workload
from bench.timeline import Timeline, percentile
from bench.workload import Workload, generate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stat_line(pid: int, comm: str, ppid: int, session: int, utime: int, stime: int, started: int = 100) -> str:
    fields = ["S", ppid, pid, session, 0, -1, 4194560, 10, 0, 0, 0, utime, stime, 0, 0, 20, 0, 1, 0, started,
              1000, 50]
    return f"{pid} ({comm}) " + " ".join(map(str, fields)) + "\n"


def fake_proc(root: Path, rows: list[tuple[int, int, int, int, int]]) -> Path:
    """(pid, ppid, session, cpu ticks, rss kB) as /proc files."""
    for pid, ppid, session, ticks, rss_kb in rows:
        folder = root / str(pid)
        folder.mkdir(parents=True)
        (folder / "stat").write_text(stat_line(pid, "ray::Shard Actor (x)", ppid, session, ticks, 0))
        (folder / "status").write_text(f"Name:\tx\nVmRSS:\t    {rss_kb} kB\nThreads:\t3\n")
    (root / "self").mkdir()
    return root


def test_bytes_written_are_those_handed_to_write_calls_not_the_dirtied_folios(tmp_path):
    # write_bytes counts each page-cache folio a write dirties whole: LMDB's 4 KiB pages in large
    # folios read through its map made it 15-17 times what reached the device on Linux 6.18
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "io").write_text("rchar: 10\nwchar: 4096\nsyscr: 1\nsyscw: 1\nread_bytes: 0\n"
                                          "write_bytes: 65536\ncancelled_write_bytes: 0\n")
    assert bytes_written(tmp_path) == 4096
    before = bytes_written()
    with open(tmp_path / "file", "wb", buffering=0) as file:
        file.write(b"x" * 10_000)
    assert bytes_written() - before >= 10_000


def test_a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses():
    info = parse_stat(stat_line(42, "ray::Shard Actor (x) )", 7, 40, utime=250, stime=50, started=999))
    assert (info.pid, info.ppid, info.session, info.cpu_ticks, info.started) == (42, 7, 40, 300, 999)


def test_the_tree_holds_descendants_and_orphans_left_in_the_roots_session(tmp_path):
    proc = fake_proc(tmp_path, [(10, 1, 10, 100, 1000),   # serve, leads its session
                                (11, 10, 10, 200, 2000),  # raylet
                                (12, 11, 12, 300, 4000),  # a worker that called setsid: a descendant still
                                (13, 1, 10, 50, 500),     # an agent re-parented to init, same session
                                (20, 1, 20, 999, 9999)])  # someone else's
    assert [info.pid for info in tree(10, processes(proc))] == [10, 11, 12, 13]
    assert sum(tree_cpu_ticks([10], proc).values()) == 650
    assert tree_rss_bytes([10], proc) == 7500 * 1024


def test_cpu_between_counts_new_processes_whole_and_ignores_a_reused_pid():
    before = {(10, 1): 100, (11, 1): 50}
    after = {(10, 1): 160, (12, 5): 40, (11, 9): 10}  # pid 11 died and its number came back
    assert cpu_seconds_between(before, after) == (60 + 40 + 10) / TICKS_PER_SECOND


def test_cpu_is_told_by_role_the_serve_process_shard_actors_and_ray(tmp_path):
    proc = fake_proc(tmp_path, [(10, 1, 10, 100, 1000), (11, 10, 10, 200, 2000), (12, 11, 10, 300, 4000)])
    (proc / "11" / "cmdline").write_bytes(b"ray::ShardActor.apply\0")
    (proc / "12" / "cmdline").write_bytes(b"/usr/bin/raylet\0--node-ip-address\0")
    assert [role(pid, [10], proc) for pid in (10, 11, 12, 13)] == ["gateway", "shards", "ray", "ray"]


BUSY = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"


def test_a_busy_child_is_in_our_tree_and_its_cpu_counts():
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.1)
        before = tree_cpu_ticks([os.getpid()])
        time.sleep(0.6)
        after = tree_cpu_ticks([os.getpid()])
        assert child.pid in {pid for pid, _ in before}
        assert tree_rss_bytes([os.getpid()]) > 1 << 20
    finally:
        child.kill()
        child.wait(10)
    assert cpu_seconds_between(before, after) > 0.05


def ids_in(path: Path, round_number: int = 0) -> set[str]:
    return {json.loads(line)["txn_id"] for line in renamed(path.read_bytes(), round_number).splitlines()}


def test_two_streams_for_one_server_and_their_rounds_never_share_a_transaction_id(tmp_path):
    # the soak fills the store with one stream, then sends another: a shared id would answer duplicate
    probe, soak = tmp_path / "probe.jsonl", tmp_path / "soak.jsonl"
    write_workload(probe, Workload(transactions=300, members=50, seed=1, id_prefix="P"))
    write_workload(soak, Workload(transactions=300, members=50, seed=2, id_prefix="S"))
    rounds = [ids_in(probe, 0), ids_in(probe, 1), ids_in(soak, 0), ids_in(soak, 1)]
    assert all(len(ids) > 250 for ids in rounds)  # the workload resubmits a few on purpose
    assert len(set().union(*rounds)) == sum(len(ids) for ids in rounds)


def test_timeline_rates_and_percentiles():
    class Answers:
        started, answered, sizes = [0.0, 0.5, 1.0], [0.2, 1.5, 2.5], [100, 100, 50]

    timeline = Timeline.of([Answers()], start=0.0)
    assert timeline.per_second() == [(0, 100), (1, 100), (2, 50)]
    assert timeline.rate() == 250 / 2.5
    assert timeline.between(0.0, 2.0) == 200
    assert percentile([0.1, 0.2, 0.3, 0.4], 0.5) == 0.2
    assert percentile([0.1, 0.2, 0.3, 0.4], 0.99) == 0.4


def bench_quick(tmp_path: Path, scenario: str, transactions: int, members: int, timeout: float
                ) -> tuple[dict, Path, str]:
    """`patron bench SCENARIO --quick` on a small stream: its JSON report, the folder it wrote, what it printed."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "cli.main", "bench", scenario, "--quick", "--transactions",
                           str(transactions), "--members", str(members), "--out", str(out), "--work",
                           str(tmp_path / "work")], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / f"{scenario}.json").read_text()), out, done.stdout


def test_bench_ingest_quick_writes_the_json_and_the_chart(tmp_path):
    report, out, printed = bench_quick(tmp_path, "ingest", 20_000, 2_000, timeout=180)
    for key in ("transactions_per_second", "cpu_seconds_per_1000", "peak_rss_bytes", "disk_bytes_per_member",
                "machine", "parameters", "timestamp"):
        assert key in report
    assert report["transactions"] == 20_000
    assert report["transactions_per_second"] > 0
    assert report["cpu_seconds_per_1000"] > 0
    assert report["client_cpu_seconds_per_1000"] > 0  # the clients share the server's cores
    assert report["peak_rss_bytes"] > 100 << 20
    assert report["machine"]["cpu_count"] == os.cpu_count()
    assert report["parameters"]["quick"] is True
    assert (out / "ingest.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "transactions/s" in printed
    assert list((tmp_path / "work").iterdir()) == []  # the scratch data folder is gone


def test_the_steady_rate_is_the_inner_seconds_mean_not_the_median_of_waves():
    # answers in waves, as a closed loop's groups come back: 64,000 and 96,000 in turn; the first
    # and the last (partial) seconds are left out
    waves = [10_000, 64_000, 96_000, 96_000, 64_000, 96_000, 5_000]
    timeline = Timeline(0.0, [(second + 0.5, count, 0.2) for second, count in enumerate(waves)])
    assert steady_rate(timeline) == 83_200  # (64,000 + 3 × 96,000 + 64,000) / 5; the median said 96,000


def test_soak_minutes_without_a_memory_sample_take_the_last_one_before():
    # the draining tail of a soak can answer batches in a minute where no sample was taken
    timeline = Timeline(0.0, [(10.0, 100, 0.1), (70.0, 100, 0.2), (130.0, 100, 0.3)])
    memory = [Sample(5.0, 1000, 600, 400, 10), Sample(65.0, 1100, 660, 440, 11)]
    rows = _per_minute(timeline, memory)
    assert [row["members"] for row in rows] == [10, 11, 11]
    assert rows[2]["heap_bytes_per_member"] == 60


def test_a_soak_is_judged_on_whole_minutes_after_the_warm_up_first_third_against_last():
    # 600 s of schedule: minutes 1..9 are whole; minute 0 warms up, minute 10 is the draining tail
    latency = {0: 9.0, 1: 0.1, 2: 0.1, 3: 0.1, 4: 5.0, 5: 5.0, 6: 5.0, 7: 0.3, 8: 0.3, 9: 0.3, 10: 60.0}
    timeline = Timeline(0.0, [(minute * 60 + at, 10, value) for minute, value in latency.items() for at in (5, 30)])
    minutes = _per_minute(timeline, [Sample(0.0, 1, 1, 0, 1)])
    whole = _whole_minutes(minutes, seconds=600.0)
    assert [m["minute"] for m in whole] == list(range(1, 10))
    early, late = _p99_early_and_late(timeline, whole)
    assert (early, late) == (0.1, 0.3)


SPENDING_KINDS = {"redeem", "payment", "coupon_issue", "coupon_use"}


def test_a_spending_workload_spends_the_share_asked_as_members_could():
    from bench.workload import generate

    txns = list(generate(Workload(transactions=20_000, members=2_000, days=1, spending_share=0.2)))
    spending = [t for t in txns if t["kind"] in SPENDING_KINDS]
    recharges = sum(1 for t in txns if t["kind"] == "recharge")
    assert 0.18 < (len(spending) + recharges - 0.005 * len(txns)) / len(txns) < 0.22
    assert {t["kind"] for t in spending} == SPENDING_KINDS
    first = {}
    for index, txn in enumerate(txns):
        first.setdefault((txn["member_id"], txn["kind"]), index)
    for index, txn in enumerate(txns):  # a payment by a card recharged before, a coupon used after it was issued
        if txn["kind"] == "payment":
            assert first[(txn["member_id"], "recharge")] < index
        if txn["kind"] == "coupon_use":
            coupon, member = "RECHARGE20", txn["member_id"]
            assert txn["coupon_code"].startswith(f"{coupon}-{member}-")
            assert first[(member, "coupon_issue")] < index


def test_every_coupon_the_spending_mix_uses_is_one_it_issued_whatever_the_bonuses_give():
    """From 2026-12-01 the example's "recharge 500, get 80" gives RECHARGE20 too, numbered with
    the coupons issued by API: the workload's uses must still name the instances it issued."""
    import msgspec

    from bench.workload import generate
    from engine.book import Book
    from engine.programme import Programme
    from engine.replay import replay_stream
    from engine.transactions import Transaction
    from engine.validation import load_rules_file
    from tests.conftest import EXAMPLE_RULES

    for start in ("2026-11-17", "2026-12-02"):  # before the bonus's first day, and during it
        txns = list(generate(Workload(transactions=20_000, members=2_000, days=1, spending_share=0.2, start=start)))
        book = Book(Programme(load_rules_file(EXAMPLE_RULES)))
        results = list(replay_stream(book, msgspec.convert(txns, list[Transaction])))
        kinds = {t["txn_id"]: t["kind"] for t in txns}
        uses = [r for r in results if kinds[r.txn_id] == "coupon_use"]
        assert {r.outcome for r in uses} <= {"accepted", "duplicate"}, [r for r in uses if r.outcome == "rejected"]
        used = [kinds[c.issued_by] for m in book.members.values() for c in m.coupons if c.status == "used"]
        assert used == ["coupon_issue"] * sum(1 for r in uses if r.outcome == "accepted")
    bonus = [c for m in book.members.values() for c in m.coupons if kinds.get(c.issued_by) == "recharge"]
    assert any(c.coupon_id == "RECHARGE20" for c in bonus)  # the bonus did give the same coupon


def test_without_spending_the_workload_is_the_stream_it_always_was():
    from bench.workload import generate

    plain = list(generate(Workload(transactions=3_000, members=300, days=1)))
    assert not {t["kind"] for t in plain} & SPENDING_KINDS
    assert plain == list(generate(Workload(transactions=3_000, members=300, days=1, spending_share=0.0)))
    assert plain != list(generate(Workload(transactions=3_000, members=300, days=1, spending_share=0.2)))


def test_bench_spending_quick_reports_its_own_rates(tmp_path):
    report, out, printed = bench_quick(tmp_path, "spending", 6_000, 600, timeout=300)
    assert "spending" in printed
    assert report["spending_share"] == 0.2
    assert report["transactions"] == 6_000
    assert report["core_transactions_per_second"] > 0
    assert report["end_to_end_transactions_per_second"] > 0
    assert (out / "spending.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_spending_share_out_of_range_is_refused_with_the_range():
    done = subprocess.run([sys.executable, "-m", "cli.main", "bench", "spending", "--spending", "1.5"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "a share from 0 to 0.85" in done.stderr


def test_a_workload_over_enrolled_members_names_only_them_and_the_default_is_unchanged():
    enrolled = list(generate(Workload(transactions=2_000, members=300, days=1, member_prefix="E", member_space=1)))
    assert {t["member_id"] for t in enrolled} <= {f"E{n:08d}" for n in range(300)}
    assert len({t["member_id"] for t in enrolled}) > 150  # Zipf over all of them, not a few
    plain = list(generate(Workload(transactions=2_000, members=300, days=1)))
    assert plain == list(generate(Workload(transactions=2_000, members=300, days=1, member_prefix="M",
                                           member_space=10)))


def test_an_overload_client_runs_in_a_scheduling_group_of_its_own_ahead_of_the_servers():
    """Tills have CPUs of their own: the overload bench's clients leave the bench's session, and
    their autogroup goes before the server's (at 0) when both want a CPU."""
    script = ("import os; from bench.clients import AHEAD_NICE, own_cpu_share; ok = own_cpu_share(); "
              "print(ok, os.getsid(0) == os.getpid(), open('/proc/self/autogroup').read().split()[-1], AHEAD_NICE)")
    if not os.path.exists("/proc/self/autogroup"):
        return  # a kernel without autogroups: nothing to be ahead of
    ok, leads, nice, wanted = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                             check=True).stdout.split()
    assert (ok, leads) == ("True", "True")
    assert int(nice) == int(wanted) < 0


def test_the_overload_report_places_each_refusal_by_its_send():
    """The first second (the burst meeting empty queues) is reported apart, each refusal with
    its send time, so the slow ones can be found in the run."""
    from types import SimpleNamespace

    from bench.overload import _first_second, _refusals_sent
    reports = [SimpleNamespace(refusals_sent=[1.2, 0.1], refusals=[0.004, 0.060]),
               SimpleNamespace(refusals_sent=[0.05, 0.99], refusals=[0.030, 0.002])]
    sent = _refusals_sent(reports)
    assert sent == [(0.05, 0.030), (0.1, 0.060), (0.99, 0.002), (1.2, 0.004)]
    assert _first_second(sent) == ([0.002, 0.030, 0.060], [0.004])


def test_a_report_says_first_when_its_server_ran_without_the_compiled_code(monkeypatch):
    """A stale engine build (a .py edited after `make`) ran `ingest` about 40% slower, and the
    report did not say so: only the server's log did."""
    from actors import batch_wire
    from bench.report import common_rows

    common = {"cpu_seconds_per_1000": 0.02, "cpu_seconds": 20.0, "peak_rss_bytes": 2**30, "disk_bytes_per_member": 0}
    assert batch_wire.not_compiled() == []  # this tree is built (make venv): nothing to say
    assert [label for label, _ in common_rows({**common, "not_compiled": []}, "transactions")] == [
        "CPU", "peak RSS", "disk"]
    monkeypatch.setattr(batch_wire, "COMPILED_ENGINE", False)
    monkeypatch.setattr(batch_wire, "_ENGINE_PURE_WHY", "edited since compiled: engine/scoring.py")
    missing = batch_wire.not_compiled()
    assert missing == ["the engine (edited since compiled: engine/scoring.py)"]
    label, text = common_rows({**common, "not_compiled": missing}, "transactions")[0]
    assert label == "NOT COMPILED"
    assert "engine/scoring.py" in text


def test_a_serve_that_exits_early_leaves_its_log_closed(tmp_path):
    """A CI run: Ray's start timed out, serve exited, and its log left open failed the next test in
    the same worker with a ResourceWarning."""
    from bench.server import Serve

    server = Serve(tmp_path / "data", tmp_path / "serve.log")  # a new folder without --rules: refused
    with pytest.raises(RuntimeError, match="exited early"):
        server.wait_for_port(timeout=120)
    assert server.output.closed
