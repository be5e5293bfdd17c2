"""`patron replay`: the engine over a JSONL file of transactions, for backtesting and agreement checks."""

import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import msgspec

from cli.inputs import past_bom, utf8_file
from engine.anomaly_report import AnomalyRow
from engine.book import Book
from engine.errors import PatronError
from engine.programme import Programme
from engine.replay import advance_to, replay_list
from engine.summary import summarise, summarise_entry
from engine.transactions import Transaction, TxnResult
from engine.types import Day
from engine.validation import load_rules_file

__all__ = ["Malformed", "ReplayFiles", "ReplayStats", "decode_line", "replay_files"]

_CHUNK_BYTES = 1 << 17
"""About 200 transactions a chunk: decoded, scored and freed while their objects are still in the
core's cache. Chunks of 1 MiB (about 1,600) cost 7% more CPU a transaction (bench/RESULTS.md,
"Replay in small chunks")."""
_decoder = msgspec.json.Decoder(Transaction)
UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What decoding a line may raise: a byte not UTF-8 inside a string from a pipe (a file is checked
whole first) and a value nested a thousand deep ended the whole replay or send (a probe)."""
MOST_NAMED = 10
_encoder = msgspec.json.Encoder()


class ReplayStats(msgspec.Struct):
    """What a replay did; `seconds` covers reading, scoring and writing results."""

    transactions: int
    seconds: float
    malformed: int

    @property
    def per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


class Malformed(Transaction):
    """Stands in for a line that is not a transaction; the engine never sees it."""

    detail: str = ""


class ReplayFiles(msgspec.Struct, kw_only=True):
    """Where a replay reads and writes; the optional outputs are written only when named."""

    rules: Path
    transactions: Path
    members_out: Path
    results_out: Path
    ledger_out: Path | None = None
    anomalies_out: Path | None = None
    until: Day | None = None


def replay_files(files: ReplayFiles) -> ReplayStats:
    _outputs_apart(files)
    book = Book(Programme(load_rules_file(files.rules)), keep_outputs=files.ledger_out is not None)
    utf8_file(files.transactions)
    started = time.perf_counter()
    stats = ReplayStats(0, 0.0, 0)
    anomalies: list[AnomalyRow] = []
    with ExitStack() as opened:
        source = past_bom(opened.enter_context(open(files.transactions, "rb")))
        results = opened.enter_context(Output("--results-out", files.results_out))
        ledger = opened.enter_context(Output("--ledger-out", files.ledger_out)) if files.ledger_out else None
        for chunk in _chunks(source):
            txns, whole = _decode(chunk, stats.transactions)
            results.write(_encoder.encode_lines(_replay_chunk(book, txns, whole, stats, anomalies)))
            _drain_ledger(book, ledger)
        if files.until is not None and files.until > book.today:
            anomalies.extend(advance_to(book, files.until))
            _drain_ledger(book, ledger)
    stats.seconds = time.perf_counter() - started
    _write_members(book, files.members_out)
    if files.anomalies_out:
        with Output("--anomalies-out", files.anomalies_out) as out:
            out.write(_encoder.encode_lines(anomalies))
    return stats


class Output:
    """An output file, written unbuffered and each write whole, whose failed write (a full disk)
    names it: buffered, the error came at a flush or at the close as "No space left on device"
    alone, naming no file (an outside probe)."""

    def __init__(self, flag: str, path: Path) -> None:
        self.flag, self.path = flag, path
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by __exit__

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self.file.write(view):]
        except BrokenPipeError:  # the reader of /dev/stdout went away: answered as for any command
            raise
        except OSError as error:
            raise PatronError(f"{self.flag} {self.path}: {error.strerror or error}; the replay stopped, and the "
                              f"file holds only part of its output") from error

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *failure: object) -> None:
        self.file.close()


def _outputs_apart(files: ReplayFiles) -> None:
    """An output naming an input (or another output) was written over as it was read: 9 of 2,000
    transactions replayed, exit 0, and the input gone (a probe)."""
    named = [("--rules", files.rules), ("--transactions", files.transactions), ("--members-out", files.members_out),
             ("--results-out", files.results_out), ("--ledger-out", files.ledger_out),
             ("--anomalies-out", files.anomalies_out)]
    for n, (flag, path) in enumerate(named[2:], start=2):
        for other, before in named[:n]:
            if path is not None and before is not None and _same_file(path, before):
                raise PatronError(f"{flag} {path}: {other} names that file too; replay would write over it, so name "
                                  f"another file")


def _same_file(a: Path, b: Path) -> bool:
    """Only files on a disk: /dev/null for an output not wanted, or /dev/stdin and /dev/stdout on one
    terminal, are not one file written over (a review)."""
    if a.exists() and b.exists():
        return a.is_file() and b.is_file() and os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _drain_ledger(book: Book, ledger: "Output | None") -> None:
    entries, _ = book.take_changes()
    book.take_notices()  # replay writes no events
    if ledger is not None:
        names, labels = book.programme.ladder.names, book.programme.why
        ledger.write(_encoder.encode_lines([summarise_entry(entry, names, labels) for entry in entries]))


def _replay_chunk(book: Book, txns: list[Transaction], whole: bool, stats: ReplayStats,
                  anomalies: list[AnomalyRow]) -> list[TxnResult]:
    """One result per line, in order; a malformed line is rejected and the replay goes on."""
    stats.transactions += len(txns)
    if whole:  # every line a transaction, as in nearly every chunk: the loop below was 5% of replay's time
        return replay_list(book, txns, anomalies)
    good = [t for t in txns if not isinstance(t, Malformed)]
    scored = iter(replay_list(book, good, anomalies))
    out = []
    for txn in txns:
        if isinstance(txn, Malformed):
            stats.malformed += 1
            _warn(stats.malformed, txn.detail)
            out.append(TxnResult(txn.txn_id, "rejected", 0, 0, "malformed"))
        else:
            out.append(next(scored))
    return out


def _chunks(source: BinaryIO) -> Iterator[bytes | memoryview]:
    """Whole lines, `_CHUNK_BYTES` at a time. A line longer than that is gathered in pieces and
    joined once: added to at every read, it would be copied again each time (quadratic).

    A block's whole lines are a view of it, not a copy: the line the read before cut in two is
    completed and yielded alone first. Sliced and joined to that line, every byte read was copied
    twice more (two copies of a transaction's bytes cost about 1,250 instructions under callgrind)."""
    pending: list[bytes | memoryview] = []
    while block := source.read(_CHUNK_BYTES):
        cut = block.rfind(b"\n") + 1
        if not cut:
            pending.append(block)
            continue
        lines = memoryview(block)
        start = 0
        if pending:
            start = block.find(b"\n") + 1
            pending.append(lines[:start])
            yield b"".join(pending)
        if start < cut:
            yield lines[start:cut]
        pending = [block[cut:]] if cut < len(block) else []
    rest = b"".join(pending)
    if rest.strip():
        yield rest


def _decode(chunk: bytes | memoryview, seen: int) -> tuple[list[Transaction], bool]:
    """The chunk's transactions, and whether all of its lines decoded as one (else some of them are
    Malformed stand-ins)."""
    try:
        return _decoder.decode_lines(chunk), True
    except UNREADABLE:
        pass
    lines = [line for line in bytes(chunk).split(b"\n") if line.strip()]
    return [decode_line(line, f"transaction {seen + n + 1}: ") for n, line in enumerate(lines)], False


def decode_line(line: bytes, where: str = "") -> Transaction:
    """One line as a transaction, or a Malformed stand-in that says why (after `where`)."""
    try:
        return _decoder.decode(line)
    except UNREADABLE as error:
        why = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        return Malformed(txn_id=_txn_id_of(line), detail=f"{where}{why}")


def _txn_id_of(line: bytes) -> str:
    try:
        found = msgspec.json.decode(line)
    except UNREADABLE:
        return ""
    txn_id = found.get("txn_id") if isinstance(found, dict) else None
    return txn_id if isinstance(txn_id, str) else ""


def _warn(count: int, detail: str) -> None:
    if count <= MOST_NAMED:
        print(f"replay: malformed {detail}", file=sys.stderr)
    elif count == MOST_NAMED + 1:  # the README promised every one named (a probe)
        print(f"replay: more malformed lines; only the first {MOST_NAMED} are named, the last line counts them all",
              file=sys.stderr)


def _write_members(book: Book, path: Path) -> None:
    programme = book.programme
    members = sorted(book.members.values(), key=lambda m: m.member_id)
    with Output("--members-out", path) as out:
        out.write(_encoder.encode_lines([summarise(programme, m) for m in members]))
