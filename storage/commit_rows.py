"""The rows a commit writes, packed: the members' newest ledger positions, the ledger's rows, the
members' records and the transaction index's rows. These pure functions are the specification;
the compiled ones (storage/row_packer.pyx) give the same bytes and run when built (a shard's start
says so when they are not: actors/batch_wire.py `say_if_not_compiled`)."""

from collections.abc import Callable, Iterable

from engine.ledger import LedgerEntry
from engine.members import Member
from engine.transactions import TxnRecord
from engine.types import Day
from storage import codecs
from storage.codecs import decode_txn, encode, linked_position, txn_key, with_position

__all__ = ["COMPILED_ROWS", "IndexKey", "IndexLookups", "IndexLookupsPure", "Lookup", "chained_ledger_rows",
           "chained_ledger_rows_pure", "encoded_members",
           "encoded_members_pure", "index_key", "index_key_pure",
           "index_rows", "index_rows_pure", "member_rows", "member_rows_pure", "newest_heads_pure"]

IndexKey = tuple[str, str]
"""(member, transaction id), as the engine's Book looks a transaction up."""
Lookup = Callable[[bytes], bytes | None]
"""A stored member's record by its key, in the open write (a cursor's `get`)."""

try:
    from storage import row_packer as _compiled
except ImportError as error:  # never silent: every start says so (actors/batch_wire.py)
    _compiled = None  # type: ignore[assignment]
    MISSING = f"{type(error).__name__}: {error}"
else:
    MISSING = ""
COMPILED_ROWS = _compiled is not None


def stored_head(member_id: str, heads: dict[str, int], get: Lookup, absent: set[str]) -> int:
    """The position of the member's newest ledger entry as last committed (0: none, or no member):
    as read with the member in this write or written by a commit (`heads`), or from its stored
    record; a member found not stored is added to `absent`."""
    head = heads.get(member_id)
    if head is None:
        raw = get(member_id.encode())
        if raw is None:
            absent.add(member_id)
            return 0
        head = linked_position(raw)
    return head


def newest_heads_pure(entries: list[LedgerEntry], heads: dict[str, int], get: Lookup, absent: set[str]
                      ) -> dict[str, int]:
    """Each member with entries in this commit, and its newest position as last committed (those
    found not stored added to `absent`)."""
    newest: dict[str, int] = {}
    for entry in entries:
        if entry.member_id not in newest:
            newest[entry.member_id] = stored_head(entry.member_id, heads, get, absent)
    return newest


def chained_ledger_rows_pure(entries: list[LedgerEntry | None], after: int, heads: dict[str, int], get: Lookup,
                             absent: set[str], release: bool = False
                             ) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """The ledger's rows of a commit's entries (positions after `after`, each chained to the
    member's entry before it), and each member's newest position after them. `release`: the
    entries' places in the list are emptied (None) once encoded, so that a commit holding them
    alone frees each while it is in the cache: compiled, as each is encoded (bench/RESULTS.md,
    "A commit's entries and index records freed as they are encoded")."""
    newest = newest_heads_pure(entries, heads, get, absent)
    rows = codecs.ledger_rows(entries, after, newest)
    if release:
        entries[:] = [None] * len(entries)
    return rows, newest


def member_rows_pure(members: dict[str, bytes], newest: dict[str, int], heads: dict[str, int], get: Lookup,
                     absent: set[str]) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The members' records with their newest positions: from `newest` (taken out of it, so that
    what is left there are members with entries but no new record), else as last committed. Two
    lists, each in the order of `members`: those stored (in the member table), and those not, in
    `absent` (known not stored when this commit began, or found so by `stored_head`). A member in
    `heads` is stored: `heads` holds only members read from the store or written by a commit
    (storage/shard_store.py `ShardStore.heads`), so which list takes a member needs no lookup."""
    stored, fresh = [], []
    for member_id, encoded in members.items():
        head = newest.pop(member_id) if member_id in newest else stored_head(member_id, heads, get, absent)
        (fresh if member_id in absent else stored).append((member_id.encode(), with_position(head, encoded)))
    return stored, fresh


def index_rows_pure(index: dict[IndexKey, TxnRecord | None], keys: list[bytes | None], release: bool = False
                    ) -> tuple[list[tuple[bytes, bytes]], dict[Day, list[IndexKey]]]:
    """The index's rows (keys made for lookups used again: `keys`, in the order of `index`) and
    the pairs of each day, in one pass. `release`: each record is replaced by None once encoded
    (its key stays), as `chained_ledger_rows_pure` empties its entries."""
    rows = []
    by_day: dict[Day, list[IndexKey]] = {}
    for (key, record), stored in zip(index.items(), keys, strict=True):
        rows.append((stored if stored is not None else txn_key(*key), encode(record)))
        ids = by_day.get(record.day)
        if ids is None:
            ids = by_day[record.day] = []
        ids.append(key)
        if release:  # a value replaced, no key added: the walk goes on
            index[key] = None
    return rows, by_day


def encoded_members_pure(members: Iterable[Member], into: dict[str, bytes]) -> None:
    """Members to write at commit, by id, each as `encode` gives it."""
    into.update((member.member_id, encode(member)) for member in members)


def index_key_pure(pair: IndexKey) -> bytes:
    return txn_key(*pair)


class IndexLookupsPure:
    """The transaction index as the engine's Book uses it in a write (engine/book.py `TxnIndex`):
    what this write indexed, else the stored record, found with `find` (the index's cursor's `get`)
    by its key. The key made for a lookup is kept for the commit when the pair looked up is the
    next one indexed (the engine looks a transaction up, then indexes it): in a list beside the
    records, not a second dict keyed by the pair, whose tuple would be hashed twice more.

    `last` is the index's largest key when the write began (b"": none). A key past it is not
    stored, and is not looked for: keys sort as LMDB sorts them (bytes, as Python compares them),
    a write puts index rows only at its commit (deleting some before, in a midnight or a move,
    stores none), and clients number transactions in time order, so nearly every new
    transaction's key is past the last (storage/codecs.py `txn_key`)."""

    def __init__(self, find: Lookup, last: bytes) -> None:
        self.index: dict[IndexKey, TxnRecord] = {}
        """What this write indexed, by (member, transaction id)."""
        self.keys: list[bytes | None] = []
        """The index key of each pair in `index`, in its order, when made for a lookup (None: made
        at commit)."""
        self.find = find
        self.last = last
        self._pair: IndexKey | None = None
        self._stored: bytes | None = None
        """The pair the last lookup that missed asked for, and its index key."""

    def get(self, key: IndexKey, default: TxnRecord | None = None, /) -> TxnRecord | None:
        found = self.index.get(key)
        if found is not None:
            return found
        stored = txn_key(*key)
        self._pair, self._stored = key, stored
        if stored > self.last:
            return default
        raw = self.find(stored)
        return decode_txn(raw) if raw is not None else default

    def __setitem__(self, key: IndexKey, record: TxnRecord, /) -> None:
        size = len(self.index)
        self.index[key] = record
        if len(self.index) > size:  # a pair not indexed before: its key follows the others'
            self.keys.append(self._stored if key is self._pair or key == self._pair else None)


if _compiled is not None:
    index_key, index_rows = _compiled.index_key, _compiled.index_rows
    member_rows, chained_ledger_rows = _compiled.member_rows, _compiled.chained_ledger_rows
    IndexLookups, encoded_members = _compiled.IndexLookups, _compiled.encoded_members
else:
    IndexLookups, encoded_members = IndexLookupsPure, encoded_members_pure
    index_key, index_rows = index_key_pure, index_rows_pure
    member_rows, chained_ledger_rows = member_rows_pure, chained_ledger_rows_pure
