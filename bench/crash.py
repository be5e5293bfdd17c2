"""Crash safety: stream a workload with a window of batches in flight while killing, at random
moments, the whole serve process (kill -9) and single shard actor processes; the client resends,
in order, every batch it had no answer for. Each batch starts with full refunds of purchases in
the batch before it, so a batch applied ahead of an earlier one shows. Afterwards every result
and every member must equal `patron replay` of the same stream."""

import collections
import itertools
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import msgspec

from bench.machine import command, processes
from bench.server import Serve
from bench.workload import Workload, generate
from cli.replay import ReplayFiles, replay_files
from client import PatronClient
from proto import patron_pb2 as pb

if TYPE_CHECKING:
    from bench.report import Result
    from bench.settings import Settings

__all__ = ["CrashReport", "crash_run", "run"]

_REFUND = "R-"
_OUTCOMES = {pb.OUTCOME_ACCEPTED: "accepted", pb.OUTCOME_DUPLICATE: "duplicate", pb.OUTCOME_IGNORED: "ignored",
             pb.OUTCOME_REJECTED: "rejected"}


class CrashReport(msgspec.Struct):
    transactions: int
    dependent_refunds: int
    """Full refunds sent in the batch right after their purchase's."""
    window: int
    serve_kills: int
    shard_kills: int
    resent_batches: int
    """Batches sent more than once (each counted once)."""
    breaks: dict[str, int]
    """How often a stream broke, by the status it ended with (then the client waits for SERVING)."""
    seconds: float
    result_mismatches: list[str]
    member_mismatches: list[str]
    rebalances: int = 0
    """Rebalances started (`reshard`): once, and again after each kill that cut one short."""

    @property
    def equal_to_replay(self) -> bool:
        return not self.result_mismatches and not self.member_mismatches


def crash_run(folder: Path, rules: Path, workload: Workload, kills: int, seed: int = 1,
              batch_size: int = 200, window: int = 8, hot_members: int = 0, reshard: int = 0) -> CrashReport:
    """`kills` kills at random moments of the stream; every third is of the whole serve process
    (shard, serve, shard, shard, serve, …), the others of one shard actor. `hot_members` bounds
    the members each shard keeps in memory (0: all). `reshard` N: rebalance onto N shards all
    along, started again whenever a kill cut it short, and finished after the stream."""
    folder.mkdir(parents=True, exist_ok=True)
    chunks = dependent_chunks(workload, batch_size)
    expected_results, expected_members = _replayed(folder, rules, chunks)
    rng = random.Random(seed)
    started = time.monotonic()
    serving = _Serving(folder, rules, workload.start, hot_members)
    sender = _Sender(serving, [_batch(n, chunk) for n, chunk in enumerate(chunks)], window)
    sending = threading.Thread(target=sender.run, name="crash-sender")
    sending.start()
    rebalancing = _Rebalancing(serving, reshard, sending) if reshard else None
    serve_kills = shard_kills = 0
    # while rebalancing, kills come in the stream's first part and each waits for the rebalance to
    # be under way: else a rebalance quicker than the stream (a loaded CI host) ended before any
    # kill could cut it short, and the run tested nothing of moves
    moments = sorted(rng.uniform(0.05, 0.6 if reshard else 0.95) for _ in range(kills))
    try:
        for kill, moment in enumerate(moments):
            _wait_for_progress(sender, moment)
            if rebalancing is not None:
                rebalancing.wait_until_running()
            if kill % 3 == 1:
                serving.crash_and_restart()
                serve_kills += 1
            elif serving.kill_a_shard(rng):
                shard_kills += 1
        sending.join()
        if sender.error is not None:
            raise sender.error
        if rebalancing is not None:
            rebalancing.join()
        with serving.current.client() as client:
            member_mismatches = _members_differ(client, expected_members)
    finally:
        serving.current.stop()
    result_mismatches = _results_differ(sender.results, expected_results)
    refunds = sum(1 for chunk in chunks for txn in chunk if txn["txn_id"].startswith(_REFUND))
    return CrashReport(len(expected_results), refunds, window, serve_kills, shard_kills, len(sender.resent),
                       dict(sender.breaks), time.monotonic() - started, result_mismatches, member_mismatches,
                       rebalancing.starts if rebalancing is not None else 0)


class _Serving:
    """The serve process of the moment; a kill -9 is followed by a restart on the same folder."""

    def __init__(self, folder: Path, rules: Path, start: str, hot_members: int = 0) -> None:
        self.folder, self.rules, self.start, self.hot_members = folder, rules, start, hot_members
        self.restarts = 0
        self.lock = threading.Lock()
        self.current = self._start()

    def _start(self) -> Serve:
        serve = Serve(self.folder / "data", self.folder / f"serve-{self.restarts}.log", rules=self.rules,
                      shards=2 if not (self.folder / "data").exists() else 0, start_date=self.start,
                      hot_members=self.hot_members)
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
                      if info.session == self.current.pid and command(info.pid).startswith("ray::ShardActor")]
            if not shards:
                return False
            os.kill(rng.choice(shards), signal.SIGKILL)  # Ray restarts the actor; it reopens its LMDB
            return True


class _Rebalancing(threading.Thread):
    """Rebalances onto `shards` while the stream goes on, again after each kill cut it short,
    until the stream is over and the layout is even."""

    def __init__(self, serving: _Serving, shards: int, sending: threading.Thread) -> None:
        super().__init__(name="crash-rebalance", daemon=True)
        self.serving, self.shards, self.sending = serving, shards, sending
        self.starts = 0
        self.running, self.even = threading.Event(), threading.Event()
        self.start()

    def wait_until_running(self, seconds: float = 20.0) -> None:
        """Until a rebalance is under way (or `seconds` have passed, or the layout is even)."""
        deadline = time.monotonic() + seconds
        while not self.running.is_set() and not self.even.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                with PatronClient(self.serving.current.address, timeout=10, retries=0) as client:
                    moving = client.status().resharding
                    owned = list(moving.owned)
                    even = len(owned) == self.shards and max(owned) - min(owned) <= 1
                    (self.running.set if moving.running else self.running.clear)()
                    (self.even.set if even and not moving.running else self.even.clear)()
                    if not moving.running and not even:
                        client.rebalance(self.shards)
                        self.starts += 1
                    elif not moving.running and not self.sending.is_alive():
                        return
            except grpc.RpcError:
                pass  # the server of the moment is down or busy: ask again
            time.sleep(0.2)


class _Sender:
    """Streams the batches with `window` unanswered at most; when the stream breaks, it opens a
    new one to whichever server is up and sends again, in order, from the first unanswered."""

    def __init__(self, serving: _Serving, batches: list[pb.TransactionBatch], window: int) -> None:
        self.serving, self.batches, self.window = serving, batches, window
        self.results: list[pb.TxnResult] = []
        self.done = 0
        self.sent: set[int] = set()
        self.resent: set[int] = set()
        self.furthest = 0
        """One past the last batch handed to the stream: those from `done` to here are in flight."""
        self.breaks: collections.Counter[str] = collections.Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            progress_at = time.monotonic()
            while self.done < len(self.batches):
                done = self.done
                self._stream_from(done)
                if self.done > done:
                    progress_at = time.monotonic()
                elif time.monotonic() - progress_at > 300:
                    raise TimeoutError(f"batch {self.batches[done].batch_id} unanswered for 300 s")
        except BaseException as error:  # reported by crash_run
            self.error = error

    def _stream_from(self, first: int) -> None:
        def batches() -> Iterator[pb.TransactionBatch]:
            for number in range(first, len(self.batches)):
                (self.resent if number in self.sent else self.sent).add(number)
                self.furthest = number + 1
                yield self.batches[number]

        try:
            with PatronClient(self.serving.current.address, timeout=30, retries=0) as client:
                for answer in client.stream(batches(), window=self.window):
                    self.results.extend(answer.results)
                    self.done += 1
        except grpc.RpcError as error:
            self.breaks[error.code().name] += 1
            self._wait_for_serving()

    def _wait_for_serving(self, timeout: float = 300.0) -> None:
        """As a client backs off: until the server of the moment answers SERVING again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with PatronClient(self.serving.current.address) as client:
                if client.serving():
                    return
            time.sleep(0.2)


def _replayed(folder: Path, rules: Path, chunks: list[list[dict]]) -> tuple[list[tuple], dict[str, dict]]:
    stream, members, results = folder / "stream.jsonl", folder / "replay-members.jsonl", folder / "replay.jsonl"
    stream.write_bytes(msgspec.json.Encoder().encode_lines([txn for chunk in chunks for txn in chunk]))
    replay_files(ReplayFiles(rules=rules, transactions=stream, members_out=members, results_out=results))
    expected = [(r["txn_id"], r["outcome"], r["points"], r["growth"], r["reason"])
                for r in map(json.loads, results.read_text().splitlines())]
    return expected, {m["member_id"]: m for m in map(json.loads, members.read_text().splitlines())}


def dependent_chunks(workload: Workload, size: int, refunds: int = 10) -> list[list[dict]]:
    """The workload in batches of `size`, each after the first starting with full refunds of up
    to `refunds` paid purchases of the batch before it: applied ahead of their purchases, they
    would be refunds of an unknown original."""
    txns = list(generate(workload))
    chunks = [txns[n:n + size] for n in range(0, len(txns), size)]
    refunded: set[str] = set()
    for before, chunk in itertools.pairwise(chunks):
        originals = [t for t in before if t["kind"] == "purchase" and t.get("status", "paid") == "paid"
                     and t["txn_id"] not in refunded]
        originals = list({t["txn_id"]: t for t in originals}.values())[:refunds]
        refunded.update(t["txn_id"] for t in originals)
        chunk[:0] = [_full_refund(t) for t in originals]
    return chunks


def _full_refund(purchase: dict) -> dict:
    return {"txn_id": _REFUND + purchase["txn_id"], "member_id": purchase["member_id"],
            "occurred_at_ms": purchase["occurred_at_ms"] + 1, "kind": "refund", "refund_of": purchase["txn_id"],
            "amount_minor": sum(line["paid_minor"] for line in purchase["lines"])}


def _batch(number: int, txns: list[dict]) -> pb.TransactionBatch:
    from client import transaction_message

    return pb.TransactionBatch(batch_id=f"crash-{number}", transactions=[transaction_message(t) for t in txns])


def _wait_for_progress(sender: _Sender, share: float) -> None:
    """Until `share` of the batches are answered and some are in flight: a kill between two
    streams, or after the last answer, tests nothing (a fast server answers a short stream
    within a few polls)."""
    while sender.error is None and sender.done < len(sender.batches) and (
            sender.done < share * len(sender.batches) or sender.furthest <= sender.done):
        time.sleep(0.005)


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
        got = _member(client, member_id)
        served = (got.tier, got.points, got.growth, got.abnormal, got.pending_points) if got else None
        replayed = (member["tier"], member["points"], member["growth"], member["abnormal"],
                    member.get("pending_points", 0))
        if served != replayed:
            differences.append(f"{member_id}: served {served}, replay {replayed}")
    return differences


def _member(client: PatronClient, member_id: str) -> pb.Member | None:
    """The member, once its shard answers: a shard killed near the end may still be restarting."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return client.member(member_id)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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
        report = crash_run(folder, settings.rules, workload, kills, settings.seed,
                           batch_size=settings.pick(settings.batch_size, 200, 200), window=settings.window)
    finally:
        if not settings.keep_data:
            shutil.rmtree(folder, ignore_errors=True)
    fields = {"seconds": round(report.seconds, 1), "transactions": report.transactions,
              "dependent_refunds": report.dependent_refunds, "window": report.window,
              "serve_kills": report.serve_kills, "shard_kills": report.shard_kills,
              "resent_batches": report.resent_batches, "breaks": report.breaks,
              "equal_to_replay": report.equal_to_replay,
              "result_mismatches": report.result_mismatches[:20], "member_mismatches": report.member_mismatches[:20]}
    rows = [("kills", f"{report.serve_kills} of the serve process (kill -9, restarted), {report.shard_kills} of "
                      f"single shard actors (Ray restarted them)"),
            ("stream", f"{report.transactions:,} transactions ({report.dependent_refunds:,} of them full refunds "
                       f"of the batch before), {report.window} batches in flight, {report.resent_batches} batches "
                       f"resent, {report.seconds:.0f} s"),
            ("breaks", ", ".join(f"{count} {code}" for code, count in sorted(report.breaks.items())) or "none"),
            ("verdict", "every result and member equals replay" if report.equal_to_replay else
             f"{len(report.result_mismatches)} results and {len(report.member_mismatches)} members DIFFER")]
    chart = Chart("crash: kills while streaming", bars=[("serve kills", report.serve_kills),
                                                         ("shard kills", report.shard_kills),
                                                         ("resent batches", report.resent_batches)])
    return Result("crash", fields, settings.parameters(kills=kills, transactions=transactions, members=members),
                  rows, chart, ok=report.equal_to_replay)
