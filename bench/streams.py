"""The benchmarks' inputs: transaction streams as JSONL files, and batches pre-serialised from them."""

import itertools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple
from zoneinfo import ZoneInfo

import msgspec

from bench.progress import Progress
from bench.workload import Workload, generate
from client import transaction_message
from proto import patron_pb2 as pb

__all__ = ["MARK", "Batch", "enroll_requests", "next_day", "read_batches", "renamed", "write_enrollees",
           "write_member_load", "write_workload"]

MARK = "c0000-"
"""Every transaction and batch id starts with it; `renamed` turns it into another round's prefix."""

_encoder = msgspec.json.Encoder()


def write_workload(path: Path, workload: Workload, label: str = "generate") -> int:
    """The seeded realistic stream, with MARK before the workload's own id prefix (two streams sent
    to one server must not share ids); returns the count."""
    workload = msgspec.structs.replace(workload, id_prefix=MARK + workload.id_prefix)
    progress = Progress(label, workload.transactions)
    count = 0
    with open(path, "wb") as out:
        source = generate(workload)
        while chunk := list(itertools.islice(source, 10_000)):
            out.write(_encoder.encode_lines(chunk))
            count += len(chunk)
            progress.update(count)
    progress.close()
    return count


def write_member_load(path: Path, members: int, day: str, timezone: str = "Asia/Shanghai", prefix: str = "L") -> int:
    """One purchase per member (ids PREFIX00000000...) during `day`: N members in the books."""
    opening = datetime.fromisoformat(day).replace(hour=8, tzinfo=ZoneInfo(timezone))
    first_ms = int(opening.timestamp() * 1000)
    spread_ms = 14 * 3_600_000  # 08:00 to 22:00
    with open(path, "wb") as out:
        for start in range(0, members, 10_000):
            out.write(_encoder.encode_lines([
                {"txn_id": f"{MARK}{prefix}{n:08d}", "member_id": f"{prefix}{n:08d}",
                 "occurred_at_ms": first_ms + spread_ms * n // members, "kind": "purchase", "store_id": "S001",
                 "channel": "pos", "lines": [{"sku": f"SKU-{n % 5000:05d}", "category": "grocery",
                                              "name": "grocery item", "paid_minor": 500 + n % 9_500,
                                              "quantity": 1}]}
                for n in range(start, min(start + 10_000, members))]))
    return members


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


class Batch(NamedTuple):
    data: bytes
    """A serialised TransactionBatch."""
    size: int
    number: int
    """Its place in the whole file's batches."""


def read_batches(path: Path, part: int = 0, parts: int = 1, size: int = 1000) -> list[Batch]:
    """This part's batches: the file cut into batches of `size` lines, batch i going to part i % parts."""
    decoder = msgspec.json.Decoder()
    batches: list[Batch] = []
    with open(path, "rb") as source:
        for number, lines in enumerate(_chunks(source, size)):
            if number % parts == part:
                txns = [transaction_message(decoder.decode(line)) for line in lines]
                batch = pb.TransactionBatch(batch_id=f"{MARK}b{number:08d}", transactions=txns)
                batches.append(Batch(batch.SerializeToString(), len(txns), number))
    return batches


def _chunks(source: BinaryIO, size: int) -> Iterator[list[bytes]]:
    lines = (line for line in source if line.strip())
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


def renamed(batch: bytes, round_number: int) -> bytes:
    """The same batch with new transaction ids (and refunds pointing at the renamed originals): the
    prefix has the same length, so every protobuf length stays right."""
    if round_number == 0:
        return batch
    return batch.replace(MARK.encode(), f"c{round_number % 10_000:04d}-".encode())


def write_enrollees(path: Path, members: int, prefix: str = "E") -> int:
    """The members `enroll_requests` enrolls (ids PREFIX00000000..., the same channel, birthday,
    source and campaign; no attributes, which an import row has not), as a `patron import` CSV
    without opening balances: new members, brought in by the bulk path."""
    with open(path, "w") as out:
        out.write("member_id,channel,birthday,source,campaign\n")
        for start in range(0, members, 100_000):
            out.write("".join(f"{prefix}{n:08d},{('app', 'pos', 'web')[n % 3]},{1 + n % 12:02d}-{1 + n % 28:02d},"
                              f"bench,spring-{n % 7}\n" for n in range(start, min(start + 100_000, members))))
    return members


def enroll_requests(members: int, part: int = 0, parts: int = 1, prefix: str = "E",
                    batch: int = 1000) -> list[tuple[bytes, int]]:
    """Serialised EnrollBatchRequest messages (with how many members each holds) for the members
    n with n % parts == part."""
    requests, pending = [], pb.EnrollBatchRequest()
    for n in range(part, members, parts):
        request = pending.members.add(member_id=f"{prefix}{n:08d}", channel=("app", "pos", "web")[n % 3],
                                      birthday=f"{1 + n % 12:02d}-{1 + n % 28:02d}", source="bench",
                                      campaign=f"spring-{n % 7}")
        request.attributes["city"].text = ("Shanghai", "Beijing", "Shenzhen", "Hangzhou")[n % 4]
        request.attributes["age"].number = 18 + n % 60
        if len(pending.members) == batch:
            requests.append((pending.SerializeToString(), batch))
            pending = pb.EnrollBatchRequest()
    if pending.members:
        requests.append((pending.SerializeToString(), len(pending.members)))
    return requests
