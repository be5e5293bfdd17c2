"""`patron import FILE`: members and their opening balances from a CSV or JSON-lines file, sent
in chunks with a few in flight, a progress line, a report of every rejected row (line, member,
reason, detail) and a small progress file so that a run cut short resumes where it stopped.

Contract: the progress file moves past a chunk only after the server acknowledged it and its
rejected rows are in the report (flushed to disk); the import's id (derived from the file's
content) makes a chunk sent again after a crash harmless: the server counts the members this
import already created as imported before and applies nothing twice."""

import csv
import hashlib
import io
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import grpc
import msgspec

from bench.progress import Progress
from client.import_file import Row, file_format, read_rows
from client.patron_client import PatronClient, backoff, retriable
from engine.errors import PatronError
from proto import patron_pb2 as pb

__all__ = ["ImportOptions", "ImportState", "run_import"]

REPORT_HEADER = "line,member_id,reason,detail\n"
_encode_rows = msgspec.msgpack.Encoder().encode
"""Rows go in an ImportRequest's compact `rows` (MessagePack arrays of engine.opening.Opening)."""


class ImportOptions(msgspec.Struct, kw_only=True):
    file: Path
    format: str | None = None
    report: Path | None = None
    progress: Path | None = None
    import_id: str = ""
    restart: bool = False
    chunk: int = 2_000
    in_flight: int = 4
    retries: int = 8


class ImportState(msgspec.Struct, kw_only=True):
    """What the progress file keeps: every row before `offset` (the start of line `line`) is
    settled, and the report holds exactly `report_bytes` of their rejections."""

    import_id: str
    file_digest: str = ""
    """The file's content when the import began: with an --import-id of its own an edited file kept
    the id, and was taken as resumed or finished (an outside probe)."""
    data_id: str = ""
    """The server's data folder (GetStatus `data_id`) the rows went into: a progress is no proof
    for another folder, nor for this one brought back to an earlier checkpoint."""
    offset: int = 0
    line: int = 1
    report_bytes: int = 0
    rows: int = 0
    imported: int = 0
    imported_before: int = 0
    rejected: dict[str, int] = {}
    finished: bool = False


class _Chunk(NamedTuple):
    sent: list[Row]
    refused: list[Row]
    """Rows rejected here (unreadable, a member twice in the file), never sent."""
    end: int
    next_line: int
    request: pb.ImportRequest


def run_import(client: PatronClient, options: ImportOptions, say: Callable[[str], None] = print) -> ImportState:
    """Import the file (or what is left of it); returns the final state, written to the progress file."""
    path = options.file
    fmt = file_format(path, options.format)
    report_path = options.report or path.with_name(path.name + ".rejected.csv")
    progress_path = options.progress or path.with_name(path.name + ".import-progress")
    digest = _digest(path)
    import_id = options.import_id or f"{path.name[:70]}:{digest}"
    state = _starting_state(progress_path, import_id, digest, options.restart)
    if state.data_id and (state.offset or state.finished):  # it vouches only for the folder the rows went into
        _same_data_folder(client, state, progress_path)
    if state.finished:
        say(f"import {import_id}: already finished (progress in {progress_path}; --restart imports it again)")
        return state
    seen = _members_before(path, fmt, state)
    if state.offset:
        say(f"import {import_id}: resuming at line {state.line:,} ({state.rows:,} rows settled)")
    with _open_report(report_path, state.report_bytes) as report:
        _Run(client, options, state, report, progress_path, seen, path.stat().st_size).all(read_rows(
            path, fmt, state.offset, state.line))
    state.finished = True
    _save(progress_path, state)
    return state


def _digest(path: Path) -> str:
    """A digest of the file's content: the same file resumes, an edited one is a new import."""
    digest = hashlib.blake2b(digest_size=8)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _starting_state(progress_path: Path, import_id: str, digest: str, restart: bool) -> ImportState:
    if restart or not progress_path.exists():
        return ImportState(import_id=import_id, file_digest=digest)
    try:
        state = msgspec.json.decode(progress_path.read_bytes(), type=ImportState)
    except msgspec.DecodeError as error:  # cut short by a full disk, or another file of that name
        raise PatronError(f"{progress_path} is not an import's progress ({error}): pass --restart to import the "
                          f"file from the top (members imported already are reported already_imported), or "
                          f"--progress for another file") from None
    if state.import_id != import_id:
        raise PatronError(f"{progress_path} records import {state.import_id!r}, but the file is now import "
                          f"{import_id!r} (it changed?): pass --restart to import it from the top (members "
                          f"imported already are reported already_imported), or --progress for another file")
    if state.file_digest and state.file_digest != digest:
        raise PatronError(f"{progress_path} records import {state.import_id!r} of the file as it was; it has changed "
                          f"since: pass --restart to import it from the top (members imported already are "
                          f"reported already_imported), or --progress for another file")
    return state


def _same_data_folder(client: PatronClient, state: ImportState, progress_path: Path) -> None:
    data_id = client.status().data_id
    if data_id and data_id != state.data_id:
        raise PatronError(f"{progress_path} records import {state.import_id!r} into another data folder than this "
                          f"server's (another server, or this one restored to a checkpoint since): pass --restart "
                          f"to import the file here from the top (members already here are reported "
                          f"already_imported), or --progress for another progress file")


def _members_before(path: Path, fmt: str, state: ImportState) -> dict[str, int]:
    """Member ids of the rows before the resume point, with their lines: a member twice in the
    file is refused the same way whether or not the import was resumed between the two."""
    seen: dict[str, int] = {}
    if state.offset:
        for row in read_rows(path, fmt):
            if row.line >= state.line:
                break
            if row.message is not None:
                seen.setdefault(row.member_id, row.line)
    return seen


def _open_report(path: Path, keep: int) -> io.BufferedRandom:
    """The report cut back to what the progress file vouches for, so a chunk settled again
    after a crash is not listed twice."""
    if keep and (not path.exists() or path.stat().st_size < keep):  # truncate() would pad it with zeros
        raise PatronError(f"the report {path} holds less than the progress file vouches for ({keep:,} bytes): "
                          f"moved, or another --report than the import began with? Give that one, or pass "
                          f"--restart to import the file from the top")
    report = open(path, "r+b" if keep else "w+b")  # noqa: SIM115 (the caller closes it)
    report.truncate(keep)
    report.seek(keep)
    if not keep:
        report.write(REPORT_HEADER.encode())
    return report


class _Run:
    def __init__(self, client: PatronClient, options: ImportOptions, state: ImportState, report: io.BufferedRandom,
                 progress_path: Path, seen: dict[str, int], size: int) -> None:
        self.client, self.options, self.state, self.report = client, options, state, report
        self.progress_path, self.seen, self.size = progress_path, seen, size
        self.window: deque[tuple[_Chunk, grpc.Future]] = deque()
        self.bar = Progress("import", 0, unit="rows")
        self.bar.done = state.rows

    def all(self, rows: object) -> None:
        sent: list[Row] = []
        refused: list[Row] = []
        last: Row | None = None
        for row in rows:
            last = row
            # an id-less row is the server's bad_member_id each time, not a duplicate of the first (a probe)
            first = self.seen.get(row.member_id) if row.message is not None and row.member_id else None
            if row.message is None:
                refused.append(row)
            elif first is not None:
                refused.append(row._replace(reason="duplicate_member",
                                            detail=f"member {row.member_id!r} is on line {first:,} already"))
            else:
                if row.member_id:
                    self.seen[row.member_id] = row.line
                sent.append(row)
            if len(sent) + len(refused) >= self.options.chunk:
                self._send(sent, refused, last)
                sent, refused = [], []
        if last is not None and (sent or refused):
            self._send(sent, refused, last)
        while self.window:
            self._settle(*self.window.popleft())
        self.bar.close()

    def _send(self, sent: list[Row], refused: list[Row], last: Row) -> None:
        request = pb.ImportRequest(import_id=self.state.import_id, rows=_encode_rows([row.message for row in sent]))
        chunk = _Chunk(sent, refused, last.end, last.line + 1, request)
        self.window.append((chunk, self._call(chunk)))
        while len(self.window) >= self.options.in_flight:
            self._settle(*self.window.popleft())

    def _call(self, chunk: _Chunk) -> grpc.Future | None:
        return self.client.import_future(chunk.request) if chunk.sent else None

    def _settle(self, chunk: _Chunk, future: grpc.Future | None) -> None:
        answer = self._answer(chunk, future)
        rejected = [(row.line, row.member_id, row.reason, row.detail) for row in chunk.refused]
        rejected += [(chunk.sent[r.index].line, chunk.sent[r.index].member_id, r.reason, r.detail)
                     for r in answer.rejected]
        self._record(chunk, answer, sorted(rejected))

    def _answer(self, chunk: _Chunk, future: grpc.Future | None) -> pb.ImportResponse:
        """The chunk's answer, sending it again (harmless) while the server is busy or restarting."""
        for attempt in range(1, self.options.retries + 2):
            if future is None:
                return pb.ImportResponse()
            try:
                return future.result()
            except grpc.RpcError as error:
                if not retriable(error) or attempt > self.options.retries:
                    raise
                time.sleep(backoff(attempt, error))  # spread, and as long as a refusal asks (a probe)
                future = self._call(chunk)
        raise AssertionError("unreachable")

    def _record(self, chunk: _Chunk, answer: pb.ImportResponse, rejected: list[tuple]) -> None:
        state = self.state
        if rejected:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rejected)
            self.report.write(text.getvalue().encode())
        self.report.flush()
        os.fsync(self.report.fileno())
        for _, _, reason, _ in rejected:
            state.rejected[reason] = state.rejected.get(reason, 0) + 1
        state.rows += len(chunk.sent) + len(chunk.refused)
        state.imported += answer.imported
        state.imported_before += answer.imported_before
        state.offset, state.line, state.report_bytes = chunk.end, chunk.next_line, self.report.tell()
        if not state.data_id:  # at the first chunk settled: the folder this progress vouches for
            state.data_id = self.client.status().data_id
        _save(self.progress_path, state)
        share = f"{100 * chunk.end / self.size:.0f}% of the file" if self.size else ""
        self.bar.update(state.rows, f"{share}, {sum(state.rejected.values()):,} rejected")


def _save(path: Path, state: ImportState) -> None:
    """Atomically: a crash leaves the old progress or the new, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(msgspec.json.encode(state))
    os.replace(temporary, path)
