"""Which on-disk layout a shard's environment has, and the one-time upgrade of older layouts.

Layout 1 keyed the ledger by member and sequence and stored members as they are. Layout 2 keys
the ledger by position (appending) and starts each stored member and entry with a position
(see `storage.codecs`). Layout 3 keys the transaction index by member and transaction id
(database `txn_index`, was `txns` keyed by id alone), and its day index lists (member, id) pairs:
an id is an idempotency key within its member (SPEC §2). Layout 4 stores a ledger entry's why as
its parts (engine/why.py) where layout 3 stored the text: layout 3's texts are read as they are,
so its upgrade only marks the folder, which an older patron then refuses instead of failing on
the first entry it cannot read. Layout 5 puts two logs in front of the member table
(storage/member_table.py): a member's newest record may be in a log, which an older patron would
not read; an older folder has none, so its upgrade only marks it."""

from collections.abc import Iterator
from typing import Any

import msgspec

from storage.codecs import decode_txn, encode, position_key, txn_key, with_position

__all__ = ["LAYOUT", "upgrade_layout"]

LAYOUT = 5
_KEY = b"storage_layout"
_CHUNK = 50_000


def upgrade_layout(env: Any, dbs: dict[str, Any]) -> None:
    """Bring the environment to the current layout in one write transaction: a crash during
    the upgrade leaves the old layout whole, and the next start upgrades again. A new environment is
    marked with the current layout. A folder written by a newer patron is refused rather than
    misread; going back to an older patron needs a checkpoint taken before the upgrade."""
    with env.begin() as txn:
        raw = txn.get(_KEY, db=dbs["meta"])
        empty = not (txn.stat(dbs["members"])["entries"] or txn.stat(dbs["ledger"])["entries"])
    found = msgspec.msgpack.decode(raw) if raw is not None else 1
    if found == LAYOUT:
        return
    if found > LAYOUT:
        raise RuntimeError(f"this data folder has storage layout {found}, written by a newer patron; "
                           f"this one reads layout {LAYOUT} at most")
    if not empty and found < 3:
        _room_to_rewrite(env)
    with env.begin(write=True) as txn:
        if not empty and found < 2:
            _ledger_by_position(txn, dbs["ledger"], dbs["members"])
        if found < 3:
            _index_by_member(txn, env.open_db(b"txns", txn=txn), dbs["txn_index"], dbs["txn_days"])
        txn.put(_KEY, encode(LAYOUT), db=dbs["meta"])


def _room_to_rewrite(env: Any) -> None:
    """The upgrade writes the ledger and the members anew before the old pages are free: the
    map must hold the store about twice over, past the configured ceiling if need be (an upgrade
    cannot stop halfway)."""
    used = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    if env.info()["map_size"] < 3 * used:
        env.set_mapsize(3 * used)


def _ledger_by_position(txn: Any, ledger: Any, members: Any) -> None:
    """Layout 1's ledger sorts by member, then sequence: renumber it in that order, chaining
    each member's entries, and give every member the position of its newest. A chunk at a time,
    so memory holds a chunk and a position per member, not the ledger."""
    newest: dict[bytes, int] = {}
    position = 0
    for chunk in _chunks(txn, ledger, old_only=True):
        rows = []
        for key, value in chunk:
            member = key[:-9]  # the key was member, NUL, 8-byte sequence (never 8 bytes long)
            position += 1
            rows.append((position_key(position), with_position(newest.get(member, 0), value)))
            newest[member] = position
            txn.delete(key, db=ledger)
        txn.cursor(db=ledger).putmulti(rows)
    for chunk in _chunks(txn, members):
        txn.cursor(db=members).putmulti([(key, with_position(newest.get(key, 0), value)) for key, value in chunk])


def _index_by_member(txn: Any, old: Any, index: Any, days: Any) -> None:
    """Layouts 1 and 2 keyed the index by transaction id, each record naming its member: copy
    every record under (member, id) and rewrite the day index's id lists as (member, id) pairs,
    a chunk at a time, then drop the old database."""
    for chunk in _chunks(txn, old):
        rows = [(txn_key(decode_txn(value).member_id, key.decode()), value) for key, value in chunk]
        txn.cursor(db=index).putmulti(rows)
    for chunk in _chunks(txn, days):
        rows = []
        for key, value in chunk:
            pairs = []
            for txn_id in msgspec.msgpack.decode(value):
                record = txn.get(txn_id.encode(), db=old)
                if record is not None:  # an id no longer indexed names no member
                    pairs.append((decode_txn(record).member_id, txn_id))
            rows.append((key, encode(pairs)))
        txn.cursor(db=days).putmulti(rows)
    txn.drop(old, delete=True)


def _chunks(txn: Any, db: Any, old_only: bool = False) -> Iterator[list[tuple[bytes, bytes]]]:
    """The database's records in key order, copied out a chunk at a time, so the caller may
    write between chunks; `old_only` skips the 8-byte keys of layout 2."""
    after = b""
    while True:
        chunk: list[tuple[bytes, bytes]] = []
        cursor = txn.cursor(db=db)
        found = cursor.set_range(after) if after else cursor.first()
        while found and len(chunk) < _CHUNK:
            key = cursor.key()
            if key != after and not (old_only and len(key) == 8):
                chunk.append((key, cursor.value()))
            found = cursor.next()
        cursor.close()
        if not chunk:
            return
        after = chunk[-1][0]
        yield chunk
