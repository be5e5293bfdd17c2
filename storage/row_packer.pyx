# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""A commit's rows packed by compiled code: the bytes storage/commit_rows.py's pure functions give
(their specification), each row made in one allocation, without a Python call per row but the
MessagePack encoding and, for a member whose head is not known, its stored record's lookup.

An index key this code does not expect (one too long for LMDB, ids that are not `str`) is left
to the pure `txn_key`, which decides as before."""

from libc.stdint cimport UINT64_MAX, uint8_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject, PyTypeObject

from engine.ledger import LedgerEntry
from engine.members import Member
from engine.notices import Notice
from engine.transactions import TxnRecord
from storage.codecs import decode_txn, txn_key
from storage.c_slots cimport slot_offset, slot_value
from storage.c_varints cimport put_varint, varint_size
from storage.record_encoder cimport RecordEncoder

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL

__all__ = ["IndexLookups", "chained_ledger_rows", "encoded_members", "event_rows", "index_key", "index_rows",
           "logged_or_fresh", "logged_rows", "member_rows", "packed_key", "placed_records"]

cdef object _decode_txn = decode_txn

cdef enum:
    MAX_KEY = 511  # storage/codecs.py MAX_KEY: LMDB's default largest key
    POSITION = 8  # a big-endian position before a stored member or ledger entry
    AHEAD = 4  # members between one wave of asking for a member's memory and the next (encoded_members)


cdef inline void put_position(uint8_t* at, uint64_t value) noexcept:
    cdef int i
    for i in range(POSITION - 1, -1, -1):
        at[i] = <uint8_t>(value & 0xFF)
        value >>= 8


cdef inline uint64_t position_of(bytes record) except? 0:
    cdef const uint8_t* at = <const uint8_t*>PyBytes_AS_STRING(record)
    cdef uint64_t value = 0
    cdef int i
    if PyBytes_GET_SIZE(record) < POSITION:
        raise ValueError("a stored record shorter than its position")
    for i in range(POSITION):
        value = value << 8 | at[i]
    return value


cdef bytes position_key(uint64_t position):
    cdef bytes key = PyBytes_FromStringAndSize(NULL, POSITION)
    put_position(<uint8_t*>PyBytes_AS_STRING(key), position)
    return key


cdef bytes positioned(uint64_t position, bytes encoded):
    """storage/codecs.py `with_position`: the position, then the record's bytes."""
    if encoded is None:  # a cdef function's argument cannot say `not None`; the pure code raises so
        raise TypeError("a record to store is None, not bytes")
    cdef Py_ssize_t size = PyBytes_GET_SIZE(encoded)
    cdef bytes record = PyBytes_FromStringAndSize(NULL, POSITION + size)
    cdef uint8_t* at = <uint8_t*>PyBytes_AS_STRING(record)
    put_position(at, position)
    memcpy(at + POSITION, PyBytes_AS_STRING(encoded), size)
    return record


cdef object _MEMBER = Member, _ENTRY = LedgerEntry, _RECORD = TxnRecord
cdef Py_ssize_t MEMBER_ID = slot_offset(Member, "member_id", "storage.row_packer")
cdef Py_ssize_t ENTRY_MEMBER = slot_offset(LedgerEntry, "member_id", "storage.row_packer")
cdef Py_ssize_t RECORD_DAY = slot_offset(TxnRecord, "day", "storage.row_packer")
cdef Py_ssize_t MEMBER_SIZE = (<PyTypeObject*>Member).tp_basicsize
cdef Py_ssize_t ENTRY_SIZE = (<PyTypeObject*>LedgerEntry).tp_basicsize
cdef Py_ssize_t RECORD_SIZE = (<PyTypeObject*>TxnRecord).tp_basicsize
"""What `fetch_record` asks for of each: a record of another class is only asked for wrongly."""


cdef inline object field_of(object record, object cls, Py_ssize_t offset, str name):
    """`getattr(record, name)`: read from its slot for a record of exactly `cls` (an attribute
    looked up by name was about 90 instructions, three a transaction)."""
    if type(record) is cls:
        return slot_value(record, offset)
    return getattr(record, name)


def encoded_members(members, dict into):
    """storage/commit_rows.py `encoded_members_pure`. A commit's members are scattered over the
    shard's memory and each of their fields is an object of its own: the encoder's loop waited
    for memory at nearly every field (perf: 78% of its samples on one load of a field's type).
    So a member's memory is asked for in three waves ahead of its encoding, each `AHEAD` members
    after the one before (its slots, its fields' heads, what its containers hold), and the waits
    overlap."""
    cdef RecordEncoder encoder = RecordEncoder()
    cdef list listed = list(members)
    cdef Py_ssize_t i, count = len(listed)
    for i in range(-3 * AHEAD, count):
        if 0 <= i + 3 * AHEAD < count:
            encoder.fetch_record(PyList_GET_ITEM(listed, i + 3 * AHEAD), MEMBER_SIZE)
        if 0 <= i + 2 * AHEAD < count:
            encoder.fetch_fields(PyList_GET_ITEM(listed, i + 2 * AHEAD))
        if 0 <= i + AHEAD < count:
            encoder.fetch_contents(PyList_GET_ITEM(listed, i + AHEAD))
        if i >= 0:
            member = listed[i]
            into[field_of(member, _MEMBER, MEMBER_ID, "member_id")] = encoder.encoded(member)


cpdef bytes index_key(object pair):
    """storage/codecs.py `txn_key(*pair)`: packed here, or by it for a pair `packed_key` leaves aside."""
    key = packed_key(pair)
    return key if key is not None else txn_key(*pair)


cpdef bytes packed_key(object pair):
    """`txn_key(*pair)` for a (member, transaction id) tuple of strings whose key fits LMDB's;
    None for any other pair."""
    cdef Py_ssize_t txn_size, member_size
    cdef const char* txn
    cdef const char* member
    cdef bytes key
    cdef uint8_t* at
    if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str or type(pair[1]) is not str:
        return None
    txn = PyUnicode_AsUTF8AndSize(pair[1], &txn_size)
    member = PyUnicode_AsUTF8AndSize(pair[0], &member_size)
    if 3 + txn_size + member_size > MAX_KEY:
        return None  # the member's id goes as a digest: the pure code's
    key = PyBytes_FromStringAndSize(NULL, 3 + txn_size + member_size)
    at = <uint8_t*>PyBytes_AS_STRING(key)
    at[0], at[1] = <uint8_t>(txn_size >> 8), <uint8_t>(txn_size & 0xFF)
    memcpy(at + 2, txn, txn_size)
    at[2 + txn_size] = 0
    memcpy(at + 3 + txn_size, member, member_size)
    return key


cdef class IndexLookups:
    """storage/commit_rows.py `IndexLookupsPure`: the transaction index as the engine's Book uses it
    in a write, looked up with no Python frame per transaction (a key packed here, the cursor's
    `get` only for a key not past the index's last, a decode when found)."""

    cdef readonly dict index
    """The records the write indexed, by (member, transaction id)."""
    cdef readonly list keys
    """The index key of each pair in `index`, in its order, when made for a lookup (None: made at commit)."""
    cdef object find
    cdef bytes last
    cdef object pair
    cdef object stored

    def __init__(self, find, bytes last not None):
        self.index, self.keys, self.find, self.last, self.pair, self.stored = {}, [], find, last, None, None

    def get(self, key, default=None, /):
        found = self.index.get(key)
        if found is not None:
            return found
        stored = index_key(key)
        self.pair, self.stored = key, stored
        if stored > self.last:
            return default
        raw = self.find(stored)
        return _decode_txn(raw) if raw is not None else default

    def __setitem__(self, key, record, /):
        cdef dict index = self.index
        cdef Py_ssize_t size = len(index)
        index[key] = record
        if len(index) > size:  # a pair not indexed before: its key follows the others'
            self.keys.append(self.stored if key is self.pair or key == self.pair else None)


cdef object stored_head(str member_id, dict heads, object get, set absent):
    head = heads.get(member_id)
    if head is not None:
        return head
    raw = get(member_id.encode())
    if raw is None:
        absent.add(member_id)
        return 0
    return position_of(raw)


def chained_ledger_rows(list entries, after, dict heads, object get, set absent not None, bint release=False):
    """storage/commit_rows.py `chained_ledger_rows_pure`: `newest_heads` and `ledger_rows` in one
    loop over the entries (a member's head looked up at its first entry, not in a loop before)."""
    cdef list rows = []
    cdef dict newest = {}
    cdef uint64_t position = after
    cdef RecordEncoder encoder = RecordEncoder()
    cdef Py_ssize_t at, count = len(entries)
    for at in range(count):
        # each entry's memory asked for ahead, in waves, as `encoded_members` asks for a member's:
        # made while its transaction was scored, an entry is out of the caches by the commit
        if at + 3 * AHEAD < count:
            encoder.fetch_record(PyList_GET_ITEM(entries, at + 3 * AHEAD), ENTRY_SIZE)
        if at + 2 * AHEAD < count:
            encoder.fetch_fields(PyList_GET_ITEM(entries, at + 2 * AHEAD))
        if at + AHEAD < count:
            encoder.fetch_contents(PyList_GET_ITEM(entries, at + AHEAD))
        entry = entries[at]
        if position == UINT64_MAX:  # would wrap to 0: the pure code's pack refuses it
            raise OverflowError("a ledger position past 2**64 - 1")
        position += 1
        member_id = field_of(entry, _ENTRY, ENTRY_MEMBER, "member_id")
        head = newest.get(member_id)
        if head is None:
            head = stored_head(member_id, heads, get, absent)
        rows.append((position_key(position), encoder.positioned(head, entry)))
        newest[member_id] = position
        if release:
            entries[at] = entry = None
    return rows, newest


def member_rows(dict members, dict newest, dict heads, object get, set absent not None):
    """storage/commit_rows.py `member_rows_pure`."""
    cdef list stored = [], fresh = []
    cdef str member_id
    cdef bytes encoded
    for member_id, encoded in members.items():
        head = newest.pop(member_id) if member_id in newest else stored_head(member_id, heads, get, absent)
        (fresh if member_id in absent else stored).append((member_id.encode(), positioned(head, encoded)))
    return stored, fresh


cdef class Ahead:
    """A dict's values `distance` ahead of a walk over it: borrowed from the dict, to be asked
    for (prefetched) and not kept. Only values behind it may be replaced meanwhile."""
    cdef dict walked
    cdef Py_ssize_t position

    def __cinit__(self, dict walked, Py_ssize_t distance):
        self.walked, self.position = walked, 0
        for _ in range(distance):
            self.next()

    cdef PyObject* next(self) noexcept:
        """The next value (borrowed: not even its reference count is touched), or None past the last."""
        cdef PyObject* key
        cdef PyObject* value
        if PyDict_Next(self.walked, &self.position, &key, &value):
            return value
        return <PyObject*>None


def index_rows(dict index, list keys, bint release=False):
    """storage/commit_rows.py `index_rows_pure`."""
    cdef list rows = []
    cdef dict by_day = {}
    cdef Py_ssize_t at = 0
    cdef RecordEncoder encoder = RecordEncoder()
    cdef Ahead slots = Ahead(index, 2 * AHEAD), heads = Ahead(index, AHEAD)
    if len(keys) != len(index):
        raise ValueError("index keys not one for each pair indexed")
    for key, record in index.items():
        # the records' memory asked for ahead, as the ledger's entries' (`chained_ledger_rows`)
        encoder.fetch_record(slots.next(), RECORD_SIZE)
        encoder.fetch_fields(heads.next())
        stored = keys[at]
        at += 1
        if stored is None:
            stored = index_key(key)
        rows.append((stored, encoder.encoded(record)))
        day = field_of(record, _RECORD, RECORD_DAY, "day")
        ids = by_day.get(day)
        if ids is None:
            ids = by_day[day] = []
        ids.append(key)
        if release:  # a value replaced, no key added or taken: the walk goes on (PyDict_Next)
            index[key] = record = None
    return rows, by_day


def logged_or_fresh(records, in_table, uint64_t position):
    """storage/member_table.py `logged_or_fresh_pure`: the records the table holds (`in_table`, the
    table cursor's lookup) go to the log as `logged_rows` packs them, the others are fresh."""
    cdef list stored = [], fresh = []
    for key, record in records:
        (stored if in_table(key) else fresh).append((key, record))
    appended, newest = logged_rows(stored, position)
    return appended, newest, fresh


def logged_rows(records, uint64_t position):
    """storage/member_table.py `logged_rows_pure`."""
    cdef list appended = [], newest = []
    cdef bytes at
    for key, record in records:
        if position == UINT64_MAX:  # would wrap to 0: the pure code's to_bytes refuses it
            raise OverflowError("a member log position past 2**64 - 1")
        position += 1
        at = position_key(position)
        appended.append((at, record))
        newest.append((key, at))
    return appended, newest


def placed_records(logged, get, Py_ssize_t quota, bint whole):
    """storage/member_table.py `placed_records_pure`."""
    cdef list placed = []
    item, step = logged.item, logged.next  # bound once, not looked up a member
    found = True
    while found and (whole or len(placed) < quota):
        key, at = item()
        record = get(at)
        if record is None:
            raise RuntimeError(f"the member log has lost member {key.decode(errors='replace')}'s newest record")
        placed.append((key, record))
        found = step()
    return placed


cdef object _NOTICE = Notice
cdef Py_ssize_t NOTICE_KIND = slot_offset(Notice, "kind", "storage.row_packer")
cdef Py_ssize_t NOTICE_MEMBER = slot_offset(Notice, "member_id", "storage.row_packer")
cdef Py_ssize_t NOTICE_DAY = slot_offset(Notice, "day", "storage.row_packer")
cdef Py_ssize_t NOTICE_DETAIL = slot_offset(Notice, "detail", "storage.row_packer")


cdef inline uint8_t* put_text_head(uint8_t* at, bytes tag, Py_ssize_t size) noexcept:
    """The `tag + varint(len(data))` of storage/outbox.py `_row`'s `tag + varint(len(data)) + data`
    (its caller copies the data), nothing for no data."""
    if size == 0:
        return at
    at[0] = <uint8_t>PyBytes_AS_STRING(tag)[0]
    return put_varint(at + 1, <uint64_t>size)


def event_rows(bytes head not None, list notices, uint64_t seq, bytes member_tag not None, bytes detail_tag not None,
               kind_field, day_field, row):
    """storage/outbox.py `event_rows_pure`, given its pieces (the one-byte tags of the member's and
    the detail's fields, the cached fields of a kind and a day, `_row`): each row made in one
    allocation, a kind's and a day's field asked once a call; a notice that is not exactly a
    Notice of str fields and an int day is `row`'s. Its caller keeps `seq` past 2**64 - 1 its own."""
    cdef list rows = []
    cdef dict kinds = {}, days = {}
    cdef bytes kind_bytes, day_bytes, made
    cdef const char* member
    cdef const char* detail
    cdef Py_ssize_t member_size, detail_size, size
    cdef uint8_t* at
    if PyBytes_GET_SIZE(member_tag) != 1 or PyBytes_GET_SIZE(detail_tag) != 1:
        raise ValueError("a field's tag is one byte")
    for notice in notices:
        seq += 1
        if type(notice) is not _NOTICE:
            rows.append((position_key(seq), row(head, notice.kind, notice.member_id, notice.day, notice.detail)))
            continue
        kind, member_id = slot_value(notice, NOTICE_KIND), slot_value(notice, NOTICE_MEMBER)
        day, text = slot_value(notice, NOTICE_DAY), slot_value(notice, NOTICE_DETAIL)
        if type(kind) is not str or type(member_id) is not str or type(day) is not int or type(text) is not str:
            rows.append((position_key(seq), row(head, kind, member_id, day, text)))
            continue
        # in `_row`'s order, so that a notice it cannot store fails as it fails there (a review)
        member = PyUnicode_AsUTF8AndSize(member_id, &member_size)
        detail = PyUnicode_AsUTF8AndSize(text, &detail_size)
        kind_bytes = kinds.get(kind)
        if kind_bytes is None:
            kind_bytes = kinds[kind] = kind_field(kind)
        day_bytes = days.get(day)
        if day_bytes is None:
            day_bytes = days[day] = day_field(day)
        size = PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(kind_bytes) + PyBytes_GET_SIZE(day_bytes)
        if member_size:
            size += 1 + varint_size(<uint64_t>member_size) + member_size
        if detail_size:
            size += 1 + varint_size(<uint64_t>detail_size) + detail_size
        made = PyBytes_FromStringAndSize(NULL, size)
        at = <uint8_t*>PyBytes_AS_STRING(made)
        memcpy(at, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
        at += PyBytes_GET_SIZE(head)
        memcpy(at, PyBytes_AS_STRING(kind_bytes), PyBytes_GET_SIZE(kind_bytes))
        at += PyBytes_GET_SIZE(kind_bytes)
        at = put_text_head(at, member_tag, member_size)
        memcpy(at, member, member_size)
        at += member_size
        memcpy(at, PyBytes_AS_STRING(day_bytes), PyBytes_GET_SIZE(day_bytes))
        at += PyBytes_GET_SIZE(day_bytes)
        at = put_text_head(at, detail_tag, detail_size)
        memcpy(at, detail, detail_size)
        rows.append((position_key(seq), made))
    return rows
