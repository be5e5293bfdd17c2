"""Crash safety: stream a workload while killing, at random moments, the whole serve process
(kill -9) and single shard actor processes; the client resends every batch it had no answer
for. Afterwards every result and every member must equal `patron replay` of the same stream."""

import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import msgspec

from bench.machine import processes
from bench.server import Serve
from bench.workload import Workload, generate, write_jsonl
from cli.replay import ReplayFiles, replay_files
from client import PatronClient
from proto import patron_pb2 as pb

if TYPE_CHECKING:
    from bench.report import Result
    from bench.settings import Settings

__all__ = ["CrashReport", "crash_run", "run"]

_OUTCOMES = {pb.OUTCOME_ACCEPTED: "accepted", pb.OUTCOME_DUPLICATE: "duplicate", pb.OUTCOME_IGNORED: "ignored",
             pb.OUTCOME_REJECTED: "rejected"}


class CrashReport(msgspec.Struct):
    transactions: int
    serve_kills: int
    shard_kills: int
    resent_batches: int
    seconds: float
    result_mismatches: list[str]
    member_mismatches: list[str]

    @property
    def equal_to_replay(self) -> bool:
        return not self.result_mismatches and not self.member_mismatches


def crash_run(folder: Path, rules: Path, workload: Workload, kills: int, seed: int = 1,
              batch_size: int = 200) -> CrashReport:
    """`kills` kills at random moments of the stream; every third is of the whole serve process
    (shard, serve, shard, shard, serve, …), the others of one shard actor."""
    folder.mkdir(parents=True, exist_ok=True)
    expected_results, expected_members = _replayed(folder, rules, workload)
    rng = random.Random(seed)
    started = time.monotonic()
    serving = _Serving(folder, rules, workload.start)
    sender = _Sender(serving, [_batch(n, chunk) for n, chunk in enumerate(_chunks(workload, batch_size))])
    sending = threading.Thread(target=sender.run, name="crash-sender")
    sending.start()
    serve_kills = shard_kills = 0
    moments = sorted(rng.uniform(0.05, 0.95) for _ in range(kills))
    try:
        for kill, moment in enumerate(moments):
            _wait_for_progress(sender, moment)
            if kill % 3 == 1:
                serving.crash_and_restart()
                serve_kills += 1
            elif serving.kill_a_shard(rng):
                shard_kills += 1
        sending.join()
        if sender.error is not None:
            raise sender.error
        with serving.current.client() as client:
            member_mismatches = _members_differ(client, expected_members)
    finally:
        serving.current.stop()
    result_mismatches = _results_differ(sender.results, expected_results)
    return CrashReport(len(expected_results), serve_kills, shard_kills, sender.resent, time.monotonic() - started,
                       result_mismatches, member_mismatches)


class _Serving:
    """The serve process of the moment; a kill -9 is followed by a restart on the same folder."""

    def __init__(self, folder: Path, rules: Path, start: str) -> None:
        self.folder, self.rules, self.start = folder, rules, start
        self.restarts = 0
        self.lock = threading.Lock()
        self.current = self._start()

    def _start(self) -> Serve:
        serve = Serve(self.folder / "data", self.folder / f"serve-{self.restarts}.log", rules=self.rules,
                      shards=2, start_date=self.start)
        serve.wait_for_port()
        serve.client().close()  # SERVING
        return serve

    def crash_and_restart(self) -> None:
        with self.lock:
            self.current.crash()
            self.current.kill_group()  # Ray's agents outlive a killed driver: clear them before restarting
            self.restarts += 1
            self.current = self._start()

    def kill_a_shard(self, rng: random.Random) -> bool:
        with self.lock:
            shards = [info.pid for info in processes().values()
                      if info.session == self.current.pid and _command(info.pid).startswith("ray::ShardActor")]
            if not shards:
                return False
            os.kill(rng.choice(shards), signal.SIGKILL)  # Ray restarts the actor; it reopens its LMDB
            return True


class _Sender:
    """Sends batches in order; each is sent again, to whichever server is up, until answered."""

    def __init__(self, serving: _Serving, batches: list[pb.TransactionBatch]) -> None:
        self.serving, self.batches = serving, batches
        self.results: list[pb.TxnResult] = []
        self.done = 0
        self.resent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for batch in self.batches:
                self.results.extend(self._until_answered(batch).results)
                self.done += 1
        except BaseException as error:  # reported by crash_run
            self.error = error

    def _until_answered(self, batch: pb.TransactionBatch) -> pb.BatchAck:
        deadline = time.monotonic() + 300
        while True:
            address = self.serving.current.address
            try:
                with PatronClient(address, timeout=30, retries=0) as client:
                    return client.submit(batch)
            except grpc.RpcError as error:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"batch {batch.batch_id} unanswered for 300 s: {error}") from error
                self.resent += 1
                time.sleep(0.2)


def _replayed(folder: Path, rules: Path, workload: Workload) -> tuple[list[tuple], dict[str, dict]]:
    stream, members, results = folder / "stream.jsonl", folder / "replay-members.jsonl", folder / "replay.jsonl"
    write_jsonl(stream, workload)
    replay_files(ReplayFiles(rules=rules, transactions=stream, members_out=members, results_out=results))
    expected = [(r["txn_id"], r["outcome"], r["points"], r["growth"], r["reason"])
                for r in map(json.loads, results.read_text().splitlines())]
    return expected, {m["member_id"]: m for m in map(json.loads, members.read_text().splitlines())}


def _chunks(workload: Workload, size: int) -> list[list[dict]]:
    txns = list(generate(workload))
    return [txns[n:n + size] for n in range(0, len(txns), size)]


def _batch(number: int, txns: list[dict]) -> pb.TransactionBatch:
    from client import transaction_message

    return pb.TransactionBatch(batch_id=f"crash-{number}", transactions=[transaction_message(t) for t in txns])


def _wait_for_progress(sender: _Sender, share: float) -> None:
    while sender.done < share * len(sender.batches) and sender.error is None and sender.done < len(sender.batches):
        time.sleep(0.01)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _results_differ(served: list[pb.TxnResult], expected: list[tuple]) -> list[str]:
    """Equal to replay, except that a transaction whose batch was committed but not answered
    before a crash comes back `duplicate` (with the same points) when the batch is resent."""
    differences = []
    for result, (txn_id, outcome, points, growth, reason) in zip(served, expected, strict=True):
        got = _OUTCOMES.get(result.outcome, "?")
        same_outcome = got == outcome or (got == "duplicate" and outcome == "accepted")
        if not same_outcome or (result.txn_id, result.points, result.growth, result.reason) != (
                txn_id, points, growth, reason):
            differences.append(f"{txn_id}: served {got} {result.points}/{result.growth} {result.reason!r}, "
                               f"replay {outcome} {points}/{growth} {reason!r}")
    return differences


def _members_differ(client: PatronClient, expected: dict[str, dict]) -> list[str]:
    differences = []
    for member_id, member in expected.items():
        got = client.member(member_id)
        served = (got.tier, got.points, got.growth, got.abnormal, got.pending_points) if got else None
        replayed = (member["tier"], member["points"], member["growth"], member["abnormal"],
                    member.get("pending_points", 0))
        if served != replayed:
            differences.append(f"{member_id}: served {served}, replay {replayed}")
    return differences


def run(settings: "Settings") -> "Result":
    """`patron bench crash`: at least 20 kills by default (quick: 4)."""
    from bench.report import Chart, Result

    kills = max(settings.pick(settings.kills, 20, 4), 1)
    transactions = settings.pick(settings.transactions, 60_000, 8_000)
    members = settings.pick(settings.members, 8_000, 1_000)
    workload = Workload(transactions=transactions, members=members, days=1, seed=settings.seed,
                        start=settings.start_date)
    folder = Path(tempfile.mkdtemp(prefix="patron-crash-", dir=settings.work))
    try:
        report = crash_run(folder, settings.rules, workload, kills, settings.seed)
    finally:
        if not settings.keep_data:
            shutil.rmtree(folder, ignore_errors=True)
    fields = {"seconds": round(report.seconds, 1), "transactions": report.transactions,
              "serve_kills": report.serve_kills, "shard_kills": report.shard_kills,
              "resent_batches": report.resent_batches, "equal_to_replay": report.equal_to_replay,
              "result_mismatches": report.result_mismatches[:20], "member_mismatches": report.member_mismatches[:20]}
    rows = [("kills", f"{report.serve_kills} of the serve process (kill -9, restarted), {report.shard_kills} of "
                      f"single shard actors (Ray restarted them)"),
            ("stream", f"{report.transactions:,} transactions, {report.resent_batches} batches resent, "
                       f"{report.seconds:.0f} s"),
            ("verdict", "every result and member equals replay" if report.equal_to_replay else
             f"{len(report.result_mismatches)} results and {len(report.member_mismatches)} members DIFFER")]
    chart = Chart("crash: kills while streaming", bars=[("serve kills", report.serve_kills),
                                                         ("shard kills", report.shard_kills),
                                                         ("resent batches", report.resent_batches)])
    return Result("crash", fields, settings.parameters(kills=kills, transactions=transactions, members=members),
                  rows, chart, ok=report.equal_to_replay)
