"""How records are stored: msgspec MessagePack codecs and the byte keys of each database."""

import struct

import msgspec

from engine.ledger import LedgerEntry
from engine.members import Member
from engine.midnight import AnomalyRow
from engine.transactions import TxnRecord
from engine.types import Day

__all__ = ["anomaly_key", "day_key", "decode_ids", "decode_member", "decode_row", "decode_txn", "encode",
           "ledger_key", "ledger_prefix"]

encode = msgspec.msgpack.Encoder().encode
decode_member = msgspec.msgpack.Decoder(Member).decode
decode_txn = msgspec.msgpack.Decoder(TxnRecord).decode
decode_entry = msgspec.msgpack.Decoder(LedgerEntry).decode
decode_row = msgspec.msgpack.Decoder(AnomalyRow).decode
decode_ids = msgspec.msgpack.Decoder(list[str]).decode

_SEQ = struct.Struct(">Q")
_DAY = struct.Struct(">I")


def ledger_prefix(member_id: str) -> bytes:
    """Ledger keys sort by member, then sequence: a member's history is one range scan."""
    return member_id.encode() + b"\x00"


def ledger_key(member_id: str, seq: int) -> bytes:
    return ledger_prefix(member_id) + _SEQ.pack(seq)


def day_key(day: Day, batch: int) -> bytes:
    """The ids a commit indexed for one local day, under one key: a whole day past retention
    is one range to delete, and a batch writes one entry per day instead of one per id."""
    return _DAY.pack(day) + _SEQ.pack(batch)


def anomaly_key(day: str, member_id: str) -> bytes:
    return day.encode() + b"\x00" + member_id.encode()
