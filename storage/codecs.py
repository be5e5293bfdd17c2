"""How records are stored: msgspec MessagePack codecs and the byte keys of each database."""

import hashlib
import struct

import msgspec

from engine.anomaly_report import AnomalyRow
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.transactions import TxnRecord
from engine.types import Day

__all__ = [
    "Rejected",
    "anomaly_key",
    "day_key",
    "decode_keys",
    "decode_row",
    "decode_txn",
    "encode",
    "encode_rejections",
    "entry_of",
    "id_digest",
    "ledger_rows",
    "linked_position",
    "member_of",
    "position_key",
    "rejected_by_key",
    "rejected_in",
    "rejected_rows",
    "rejection_key",
    "rejections_day",
    "rejections_of",
    "seq_of",
    "txn_id_of",
    "txn_key",
    "wakeup_key",
    "wakeup_of",
    "with_newest",
    "with_position",
]

_ENCODER = msgspec.msgpack.Encoder()
encode = _ENCODER.encode
"""The specification of a stored record's bytes (written by storage/record_encoder.pyx at commit,
compiled)."""
decode_member = msgspec.msgpack.Decoder(Member).decode
decode_txn = msgspec.msgpack.Decoder(TxnRecord).decode
decode_entry = msgspec.msgpack.Decoder(LedgerEntry).decode
decode_row = msgspec.msgpack.Decoder(AnomalyRow).decode
decode_keys = msgspec.msgpack.Decoder(list[tuple[str, str]]).decode
"""A day index entry: the (member, transaction id) pairs one commit indexed for one day."""

_SEQ = struct.Struct(">Q")
_DAY = struct.Struct(">I")
_LENGTH = struct.Struct(">H")
MAX_KEY = 511
"""LMDB's default largest key."""


class _EntryHead(msgspec.Struct, array_like=True):
    """The first fields of a stored ledger entry (MessagePack ignores the rest): enough to walk
    a member's chain without decoding every entry."""

    member_id: str
    seq: int


_decode_head = msgspec.msgpack.Decoder(_EntryHead).decode


def position_key(position: int) -> bytes:
    """Ledger entries are keyed by their position in the shard's ledger, so a commit appends to
    the end of the tree instead of writing a page per member (keyed by member, the ledger made
    every commit dirty a page per member, and cost more the larger the store grew)."""
    return _SEQ.pack(position)


def with_position(position: int, encoded: bytes) -> bytes:
    """A stored member or ledger entry: a position, then the record's MessagePack (a member's:
    the position of its newest ledger entry, 0: none)."""
    return _SEQ.pack(position) + encoded


def ledger_rows(entries: list[LedgerEntry], after: int, newest: dict[str, int]) -> list[tuple[bytes, bytes]]:
    """A commit's entries as stored, at the positions after `after`. A stored entry starts with
    the position of the member's entry before it (`newest`, 0: none, moved to the entry): a
    member's history is a chain from the newest entry back. One loop with no call per entry but
    the encoding: a commit writes about one entry per transaction."""
    pack, rows = _SEQ.pack, []
    for position, entry in enumerate(entries, after + 1):
        member_id = entry.member_id
        rows.append((pack(position), pack(newest.get(member_id, 0)) + encode(entry)))
        newest[member_id] = position
    return rows


def seq_of(record: bytes) -> int:
    return _decode_head(record[_SEQ.size:]).seq


def entry_of(record: bytes) -> LedgerEntry:
    return decode_entry(record[_SEQ.size:])


def member_of(record: bytes) -> Member:
    return decode_member(record[_SEQ.size:])


def linked_position(record: bytes) -> int:
    """The position a stored record starts with: a member's newest entry, or the entry before
    this one of the same member."""
    return _SEQ.unpack_from(record)[0]


def with_newest(record: bytes, newest: int) -> bytes:
    return with_position(newest, bytes(record[_SEQ.size:]))


def txn_key(member_id: str, txn_id: str) -> bytes:
    """The transaction index key: the transaction id (its length first, so no id can run into
    the other), then the member's id. Ids first: clients number transactions in time order, so
    a commit's keys fall together at the end of the tree instead of a page per member. A pair
    too long for an LMDB key (ids of up to 100 characters may take 400 bytes each) keeps the
    transaction id and a 16-byte digest of the member's, marked so it never equals a literal key."""
    txn, member = txn_id.encode(), member_id.encode()
    head = _LENGTH.pack(len(txn)) + txn
    if len(head) + 1 + len(member) <= MAX_KEY:
        return head + b"\x00" + member
    return head + b"\x01" + hashlib.blake2b(member, digest_size=16).digest()


def txn_id_of(key: bytes) -> str:
    """The transaction id of a transaction index key (`txn_key`)."""
    (length,) = _LENGTH.unpack_from(key)
    return bytes(key[_LENGTH.size:_LENGTH.size + length]).decode()


def id_digest(txn_id: str) -> bytes:
    """8 bytes standing for a transaction id when ids are compared across shards."""
    return hashlib.blake2b(txn_id.encode(), digest_size=8).digest()


def day_key(day: Day, batch: int) -> bytes:
    """The transactions a commit indexed for one local day, under one key: a whole day past retention
    is one range to delete, and a batch writes one entry per day instead of one per id."""
    return _DAY.pack(day) + _SEQ.pack(batch)


def wakeup_key(day: Day, member_id: str = "") -> bytes:
    """The wake-up index key: the day first, so one run's members are one range from the start."""
    return _DAY.pack(day) + member_id.encode()


def wakeup_of(key: bytes) -> tuple[Day, str]:
    return _DAY.unpack_from(key)[0], bytes(key[_DAY.size:]).decode()


def anomaly_key(day: str, member_id: str) -> bytes:
    return day.encode() + b"\x00" + member_id.encode()


def rejection_key(batch_id: str) -> bytes:
    """A batch id of any length as a key LMDB takes (at most 511 bytes)."""
    return hashlib.blake2b(batch_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Rejections(msgspec.Struct, array_like=True, gc=False):
    day: int
    """The business day of the commit that last added to them: what retention goes by."""
    rows: list[tuple[str, str, str]]
    """(member, transaction id, reason)."""


_encode_rejections = msgspec.msgpack.Encoder().encode
_decode_rejections = msgspec.msgpack.Decoder(_Rejections).decode


Rejected = dict[tuple[str, str], list[str]]
"""What a batch had rejected: by (member, transaction id), the reason of each place the batch sent
it, in order (a batch that sent an id twice, both rejected, had two reasons: an outside probe's
resend answered the first with the second's)."""


def encode_rejections(day: int, rejected: Rejected) -> bytes:
    return _encode_rejections(_Rejections(day, [(member, txn_id, reason) for (member, txn_id), reasons in
                                                rejected.items() for reason in reasons]))


def rejections_of(raw: bytes) -> tuple[int, list[tuple[str, str, str]]]:
    """(the day, (member, transaction id, reason) of each rejection a batch had), decoded once."""
    decoded = _decode_rejections(raw)
    return decoded.day, decoded.rows


def rejected_rows(raw: bytes) -> list[tuple[str, str, str]]:
    return rejections_of(raw)[1]


def rejected_in(raw: bytes | None) -> Rejected:
    return rejected_by_key(rejected_rows(raw)) if raw is not None else {}


def rejected_by_key(rows: list[tuple[str, str, str]]) -> Rejected:
    rejected: Rejected = {}
    for member, txn_id, reason in rows:
        rejected.setdefault((member, txn_id), []).append(reason)
    return rejected


def rejections_day(raw: bytes) -> int:
    return rejections_of(raw)[0]
