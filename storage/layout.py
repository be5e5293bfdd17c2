"""Which on-disk layout a shard's environment has, and the one-time upgrade of older layouts.

Layout 1 keyed the ledger by member and sequence and stored members as they are. Layout 2 keys
the ledger by position (appending) and starts each stored member and entry with a position
(see `storage.codecs`)."""

from typing import Any

import msgspec

from storage.codecs import decode_entry, decode_member, encode, entry_record, member_record, position_key

__all__ = ["LAYOUT", "upgrade_layout"]

LAYOUT = 2
_KEY = b"storage_layout"


def upgrade_layout(env: Any, dbs: dict[str, Any]) -> None:
    """Bring the environment to the current layout in one write transaction: a crash during
    the upgrade leaves layout 1 whole, and the next start upgrades again. A folder written by a
    newer patron is refused rather than misread."""
    with env.begin(db=dbs["meta"]) as txn:
        raw = txn.get(_KEY)
    found = msgspec.msgpack.decode(raw) if raw is not None else 1
    if found == LAYOUT:
        return
    if found > LAYOUT:
        raise RuntimeError(f"this data folder has storage layout {found}, written by a newer patron; "
                           f"this one reads layout {LAYOUT} at most")
    _room_to_rewrite(env)
    with env.begin(write=True) as txn:
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
    each member's entries, and give every member the position of its newest."""
    old = list(txn.cursor(db=ledger))
    txn.drop(ledger, delete=False)
    newest: dict[bytes, int] = {}
    rows = []
    for position, (key, value) in enumerate(old, start=1):
        member = key[:-9]  # the key was member, NUL, 8-byte sequence
        rows.append((position_key(position), entry_record(decode_entry(value), newest.get(member, 0))))
        newest[member] = position
    txn.cursor(db=ledger).putmulti(rows, append=True)
    records = [(key, member_record(decode_member(value), newest.get(key, 0))) for key, value in txn.cursor(db=members)]
    txn.cursor(db=members).putmulti(records)
