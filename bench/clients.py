"""Client processes that prepare their requests first, start together and send raw bytes: a closed
loop (a window of unanswered batches), an open loop (batches on a fixed schedule), SubmitBatch
calls that may be refused (overload) or Enroll calls."""

import asyncio
import functools
import itertools
import multiprocessing as mp
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.machine import run_queue_seconds
from bench.streams import Batch, enroll_requests, read_batches, renamed
from client.patron_client import backoff
from proto import patron_pb2 as pb

__all__ = ["Clients", "Job", "Report"]

STREAM_BATCHES = "/patron.v1.Ingest/StreamBatches"
SUBMIT_BATCH = "/patron.v1.Ingest/SubmitBatch"
ENROLL = "/patron.v1.Members/EnrollBatch"
_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
_ACCEPTED = pb.OUTCOME_ACCEPTED


@dataclass(frozen=True)
class Job:
    """What one client process does. `kind` is "stream" (batches from `source`), "submit" (the same
    batches as unary calls, `window` at a time for `seconds`) or "enroll"."""

    address: str
    kind: str = "stream"
    source: Path | None = None
    part: int = 0
    parts: int = 1
    batch_size: int = 1000
    members: int = 0
    """enroll: the members of all parts together."""
    window: int = 8
    """Closed loop: batches (or Enroll calls) sent and not yet answered."""
    rate: float = 0.0
    """Open loop when above 0: this client's transactions per second, sent whatever the answers."""
    seconds: float = 0.0
    """Open loop: how long the schedule runs (batches are reused with new ids as needed)."""
    rounds: int = 1
    """Closed loop: times through the batches, with new ids each round; 0 until told to stop."""
    keep_results: bool = False
    """Keep the accepted transaction ids of every acknowledged batch."""
    ahead_of_server: bool = False
    """Run in a session of its own whose scheduling group (Linux autogroup) goes before the
    server's: a till has CPUs of its own, and on shared cores a client kept waiting by the server's
    work measures the machine, not how soon the server answered (`own_cpu_share`)."""
    retries: int = 20
    """A stream refused with RESOURCE_EXHAUSTED is reopened (unanswered batches sent again)."""
    pause: float = 0.0
    """submit: each caller's first call leaves within this many seconds, at random; a refused
    batch is sent again after PatronClient's back-off (`client.patron_client.backoff`: 0.1 s on
    average, doubling with each refusal of the same batch, or what the refusal said room takes
    when longer). The bench used to send every refused batch again after 0.1 s whatever the
    refusals before: four times the refusals PatronClient makes, a load no till sends (bench/RESULTS.md,
    "overload: clients that back off as PatronClient does")."""


@dataclass
class Report:
    """Per answered request: when it was due (open loop) or sent, when its answer came, its size."""

    part: int
    started: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    accepted: dict[int, list[str]] = field(default_factory=dict)
    """Batch number -> accepted transaction ids (keep_results, first round only)."""
    refused: int = 0
    refusals: list[float] = field(default_factory=list)
    """submit: seconds from sending each refused (RESOURCE_EXHAUSTED) batch to its refusal."""
    refusals_sent: list[float] = field(default_factory=list)
    """submit: when each of those was sent, in seconds from the start of the run."""
    paused_seconds: float = 0.0
    """submit: the pauses after those refusals, summed."""
    failed: int = 0
    error: str = ""
    cpu_seconds: float = 0.0
    """The client process's CPU while it ran its calls."""
    seconds: float = 0.0
    """How long it ran its calls."""
    cpu_wait_seconds: float = 0.0
    """Of those seconds, how long its main thread (the calls' event loop, for submit) was ready to
    run but waited for a CPU: the machine's other processes, the server's among them."""
    ahead_of_server: bool = False
    """It ran in an autogroup of its own ahead of the server's (Job.ahead_of_server)."""


@dataclass
class _Item:
    index: int
    round: int
    due: float
    sent: float = 0.0


class _Streamer:
    def __init__(self, job: Job, batches: list[Batch], counter: Any, stop: Any) -> None:
        self.job, self.batches, self.counter, self.stop = job, batches, counter, stop
        self.report = Report(job.part)

    def run(self, start: float) -> Report:
        items = self._plan(start)
        unacked: deque[_Item] = deque()
        while True:
            try:
                self._once(items, unacked)
                return self.report
            except grpc.RpcError as error:
                code = error.code()
                if code != grpc.StatusCode.RESOURCE_EXHAUSTED or self.report.refused >= self.job.retries:
                    self.report.error = f"{code.name}: {error.details()}"
                    return self.report
                self.report.refused += 1
                time.sleep(min(0.05 * self.report.refused, 1.0))

    def _plan(self, start: float) -> Iterator[_Item]:
        job, count = self.job, len(self.batches)
        if not count:
            return iter(())
        if job.rate > 0:
            interval = job.batch_size / job.rate
            offset = interval * job.part / job.parts
            total = int(job.seconds / interval)
            return (_Item(n % count, n // count, start + offset + n * interval) for n in range(total))
        numbers = itertools.count() if job.rounds == 0 else range(job.rounds * count)
        return (_Item(n % count, n // count, start) for n in numbers)

    def _once(self, items: Iterator[_Item], unacked: deque[_Item]) -> None:
        """One stream; an item waiting to go when the stream breaks stays in `unacked` for the next."""
        job, stop = self.job, self.stop
        resend = list(unacked)
        unacked.clear()
        closed = threading.Event()
        slots = threading.Semaphore(job.window) if job.rate <= 0 else None

        def requests() -> Iterator[bytes]:
            for item in itertools.chain(resend, items):
                unacked.append(item)
                if slots is not None:
                    slots.acquire()
                elif (wait := item.due - time.monotonic()) > 0:
                    time.sleep(wait)
                if closed.is_set() or stop.is_set():
                    return
                item.sent = item.sent or time.monotonic()
                yield renamed(self.batches[item.index].data, item.round)

        channel = grpc.insecure_channel(job.address, options=_OPTIONS)
        try:
            for answer in channel.stream_stream(STREAM_BATCHES)(requests()):
                now = time.monotonic()
                item = unacked.popleft()
                if slots is not None:
                    slots.release()
                self._record(item, answer, now)
            unacked.clear()  # every batch sent was answered: what is left was never sent (asked to stop)
        finally:
            closed.set()
            if slots is not None:
                slots.release(job.window)
            channel.close()

    def _record(self, item: _Item, answer: bytes, now: float) -> None:
        report, size = self.report, self.batches[item.index].size
        report.started.append(item.due if self.job.rate > 0 else item.sent)
        report.answered.append(now)
        report.sizes.append(size)
        if self.job.keep_results and item.round == 0:
            ack = pb.BatchAck.FromString(answer)
            report.accepted[self.batches[item.index].number] = [
                r.txn_id for r in ack.results if r.outcome == _ACCEPTED]
        with self.counter.get_lock():
            self.counter.value += size


class _Enroller:
    def __init__(self, job: Job, requests: list[tuple[bytes, int]], counter: Any) -> None:
        self.job, self.requests, self.counter = job, requests, counter
        self.report = Report(job.part)
        self.lock = threading.Lock()

    def run(self, start: float) -> Report:
        slots = threading.Semaphore(self.job.window)
        channel = grpc.insecure_channel(self.job.address, options=_OPTIONS)
        call = channel.unary_unary(ENROLL)
        try:
            for request, members in self.requests:
                slots.acquire()
                future = call.future(request, timeout=120)
                future.add_done_callback(functools.partial(self._done, time.monotonic(), slots, members))
            for _ in range(self.job.window):
                slots.acquire()
        finally:
            channel.close()
        return self.report

    def _done(self, sent: float, slots: threading.Semaphore, members: int, future: grpc.Future) -> None:
        now = time.monotonic()
        with self.lock:
            if future.exception() is None:
                self.report.started.append(sent)
                self.report.answered.append(now)
                self.report.sizes.append(members)
            else:
                self.report.failed += members
                self.report.error = self.report.error or f"{future.code().name}: {future.details()}"
        with self.counter.get_lock():
            self.counter.value += members
        slots.release()


class _Submitter:
    """Unary SubmitBatch calls, `window` unanswered at a time, for `seconds`: each answer,
    acknowledgement or refusal, is timed from its send. A refused batch is sent again after
    about `pause`, as PatronClient does, so the overload does not let up. The calls share one asyncio
    loop, and a batch is renamed once, not at every resend: a thread per call and per pause, and
    renaming 260 KB for each call, cost the client more CPU than the server spent refusing, on the
    same cores. The channel is connected before the first call, and each caller's first call
    leaves within the first `pause`, at random: started in one loop turn, the hundred first calls
    were all timed from before the client had made any of them (about 60 ms of its CPU), and a
    connection being set up counted in each."""

    def __init__(self, job: Job, batches: list[Batch], counter: Any, stop: Any) -> None:
        self.job, self.batches, self.counter, self.stop = job, batches, counter, stop
        self.report = Report(job.part)

    def run(self, start: float) -> Report:
        asyncio.run(self._run(start))
        return self.report

    async def _run(self, start: float) -> None:
        numbers = itertools.count()
        async with grpc.aio.insecure_channel(self.job.address, options=_OPTIONS) as channel:
            await channel.channel_ready()
            call = channel.unary_unary(SUBMIT_BATCH)
            await asyncio.gather(*(self._caller(call, numbers, start) for _ in range(self.job.window)))

    async def _caller(self, call: Any, numbers: Iterator[int], start: float) -> None:
        job, report, count = self.job, self.report, len(self.batches)

        def running() -> bool:
            return time.monotonic() < start + job.seconds and not self.stop.is_set()

        await asyncio.sleep(random.uniform(0.0, job.pause))
        while running():
            n = next(numbers)
            batch = self.batches[n % count]
            data = renamed(batch.data, n // count)
            attempt = 0
            while running():
                sent = time.monotonic()
                try:
                    await call(data, timeout=120)
                except grpc.aio.AioRpcError as error:
                    now = time.monotonic()
                    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        report.refusals.append(now - sent)
                        report.refusals_sent.append(sent - start)
                        attempt += 1
                        pause = backoff(attempt, error)
                        report.paused_seconds += pause
                        await asyncio.sleep(pause)
                        continue
                    report.failed += batch.size
                    report.error = report.error or f"{error.code().name}: {error.details()}"
                    break
                report.started.append(sent)
                report.answered.append(time.monotonic())
                report.sizes.append(batch.size)
                with self.counter.get_lock():
                    self.counter.value += batch.size
                break


def _client(job: Job, ready: Any, go: Any, start_at: Any, stop: Any, counter: Any, results: Any) -> None:
    """A client process: prepare, say so, wait for the start, run, report."""
    try:
        if job.kind == "enroll":
            worker: _Streamer | _Enroller | _Submitter = _Enroller(
                job, enroll_requests(job.members, job.part, job.parts), counter)
        else:
            assert job.source is not None
            batches = read_batches(job.source, job.part, job.parts, job.batch_size)
            worker = (_Submitter if job.kind == "submit" else _Streamer)(job, batches, counter, stop)
    except Exception as error:
        ready.put((job.part, f"{type(error).__name__}: {error}"))
        return
    ahead = job.ahead_of_server and own_cpu_share()
    ready.put((job.part, ""))
    go.wait()
    start = start_at.value
    time.sleep(max(0.0, start - time.monotonic()))
    cpu, began, waited = time.process_time(), time.monotonic(), _waited()
    try:
        report = worker.run(start)
    except Exception as error:
        report = worker.report
        report.error = f"{type(error).__name__}: {error}"
    report.cpu_seconds = time.process_time() - cpu
    report.seconds, report.cpu_wait_seconds = time.monotonic() - began, _waited() - waited
    report.ahead_of_server = ahead
    results.put(report)


AHEAD_NICE = -10
"""Autogroup niceness of a client ahead of the server (whose session's autogroup is at 0): about
nine times the server's weight when both want a CPU."""


def own_cpu_share() -> bool:
    """Puts this process in a session (so an autogroup) of its own, ahead of the server's; False
    where the kernel has no autogroups or does not allow it (then it shares the bench's)."""
    try:
        os.setsid()
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(AHEAD_NICE))
    except OSError:
        return False
    return True


def _waited() -> float:
    return run_queue_seconds(os.getpid(), threading.get_native_id())


class Clients:
    """Client processes (spawned, so no gRPC state crosses a fork), started by `start()` together
    once all are prepared. `done` counts answered transactions (or members) over all of them."""

    def __init__(self, jobs: list[Job]) -> None:
        context = mp.get_context("spawn")
        self.jobs = jobs
        self.counter = context.Value("q", 0)
        self.start_at = context.Value("d", 0.0)
        self.ready, self.results = context.Queue(), context.Queue()
        self.go, self.stopping = context.Event(), context.Event()
        self.processes = [context.Process(target=_client, name=f"bench-client-{job.part}", daemon=True,
                                          args=(job, self.ready, self.go, self.start_at, self.stopping,
                                                self.counter, self.results))
                          for job in jobs]
        for process in self.processes:
            process.start()

    @property
    def done(self) -> int:
        return self.counter.value

    def wait_ready(self, timeout: float = 3600.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in self.jobs:
            while True:
                try:
                    part, error = self.ready.get(timeout=1.0)
                    break
                except queue.Empty:
                    self._check_alive(deadline)
            if error:
                raise RuntimeError(f"client {part} could not prepare: {error}")

    def start(self, delay: float = 0.05) -> float:
        """Start every client at the same instant (time.monotonic(), shared by processes); returns it."""
        self.start_at.value = time.monotonic() + delay
        self.go.set()
        return self.start_at.value

    def stop(self) -> None:
        """Clients running until told stop taking new batches; answers in flight still come."""
        self.stopping.set()

    def finish(self, tick: Any = None, timeout: float = 36000.0) -> list[Report]:
        """Wait for every report; `tick()` is called about twice a second meanwhile."""
        deadline = time.monotonic() + timeout
        reports: list[Report] = []
        while len(reports) < len(self.jobs):
            try:
                reports.append(self.results.get(timeout=0.5))
            except queue.Empty:
                self._check_alive(deadline)
            if tick is not None:
                tick()
        for process in self.processes:
            process.join(timeout=30)
        return sorted(reports, key=lambda r: r.part)

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)

    def __enter__(self) -> "Clients":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_alive(self, deadline: float) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError("the clients did not finish in time")
        if all(p.exitcode is not None for p in self.processes):
            time.sleep(1.0)  # a report may still be on its way through the queue's pipe
            if self.results.empty() and self.ready.empty():
                codes = [p.exitcode for p in self.processes]
                raise RuntimeError(f"every client process ended without reporting (exit codes {codes})")
