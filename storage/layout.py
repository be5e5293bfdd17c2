"""Which on-disk layout a shard's environment has, and the one-time upgrade of older layouts.

Layout 1 keyed the ledger by member and sequence and stored members as they are. Layout 2 keys
the ledger by position (appending) and starts each stored member and entry with a position
(see `storage.codecs`)."""

from collections.abc import Iterator
from typing import Any

import msgspec

from storage.codecs import encode, position_key, with_position

__all__ = ["LAYOUT", "upgrade_layout"]

LAYOUT = 2
_KEY = b"storage_layout"
_CHUNK = 50_000


def upgrade_layout(env: Any, dbs: dict[str, Any]) -> None:
    """Bring the environment to the current layout in one write transaction: a crash during
    the upgrade leaves layout 1 whole, and the next start upgrades again. A new environment is
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
    if not empty:
        _room_to_rewrite(env)
    with env.begin(write=True) as txn:
        if not empty:
            _ledger_by_position(txn, dbs["ledger"], dbs["members"])
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
