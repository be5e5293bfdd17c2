# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""A batch's statistics counted by compiled code: what actors/batch_stats.py's pure `count_outcomes_pure`
and `count_ledger_pure` count (their specification), in one loop each, without a Python call per
transaction or entry. Fields are read where msgspec keeps them in the record (each Struct field
is a slot at a fixed offset, found once from its descriptor), not through attribute lookups,
and the ledger's amounts are summed as C integers. The ledger's rare kinds (tier moves and
coupons, counted into dicts by name): tier moves are handed back for the pure code to count, in
their order; coupons are counted here, into a dict in the order the pure code's Counter fills (a
shard gives most new members a welcome coupon, and the pure loop was about 1,000 instructions a
transaction of a shard's write); the whole ledger is handed back when an entry is not exactly a
LedgerEntry, a coupon's code, member or note is not exactly a str, or an amount is not an int
that fits 64 bits (the pure code then counts it all, as before)."""

from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy
from cpython.object cimport PyObject

from actors.c_ints cimport read_int64
from storage.c_slots cimport slot_offset
from storage.c_slots cimport borrowed_slot as slot, slot_value as field

from engine.ledger import LedgerEntry
from engine.spending.coupons import coupon_id_of
from engine.transactions import TxnResult
from engine.types import KINDS

__all__ = ["count_ledger_common", "count_outcomes", "field_offset", "rejected_and_twins"]


cdef extern from "Python.h":
    bint __builtin_add_overflow(int64_t, int64_t, int64_t*) nogil
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    bint __builtin_sub_overflow(int64_t, int64_t, int64_t*) nogil


class Unusual(Exception):
    """A ledger this code leaves to the pure code: never seen outside this module."""


cdef Py_ssize_t offset_of(object cls, str name) except -1:
    return slot_offset(cls, name, "actors.batch_counter")


def field_offset(object cls, str name):
    """`offset_of` for the tests: what a changed Struct makes it raise."""
    return offset_of(cls, name)


cdef object _ENTRY = LedgerEntry
cdef object _RESULT = TxnResult
cdef Py_ssize_t KIND = offset_of(_ENTRY, "kind"), POINTS = offset_of(_ENTRY, "points")
cdef Py_ssize_t PENDING = offset_of(_ENTRY, "pending"), GROWTH = offset_of(_ENTRY, "growth")
cdef Py_ssize_t VALUE = offset_of(_ENTRY, "stored_value")
cdef Py_ssize_t BONUS = offset_of(_ENTRY, "bonus_value")
cdef Py_ssize_t OUTCOME = offset_of(_RESULT, "outcome")
cdef Py_ssize_t REASON = offset_of(_RESULT, "reason")
cdef Py_ssize_t RESULT_ID = offset_of(_RESULT, "txn_id")
cdef Py_ssize_t MEMBER = offset_of(_ENTRY, "member_id"), CODE = offset_of(_ENTRY, "coupon_code")
cdef Py_ssize_t NOTE = offset_of(_ENTRY, "note")


cdef inline int64_t amount(object record, Py_ssize_t offset) except? -1:
    cdef int64_t number
    if not read_int64(field(record, offset), &number):
        raise Unusual()
    return number


cdef inline int64_t add(int64_t total, int64_t more) except? -1:
    cdef int64_t result
    if __builtin_add_overflow(total, more, &result):
        raise Unusual()
    return result


cdef inline int64_t take(int64_t total, int64_t less) except? -1:
    cdef int64_t result
    if __builtin_sub_overflow(total, less, &result):
        raise Unusual()
    return result


cdef frozenset _KINDS = frozenset(KINDS)
cdef frozenset _AWARDS = frozenset(("earn", "event", "adjust", "bonus"))
cdef str _TIER = "tier"
"""The kind the pure code counts (by name, into `tier_changes`)."""
cdef dict _COUPON_EVENTS = {"coupon_issued": "issued ", "coupon_used": "used ", "coupon_expired": "expired "}
"""actors/batch_stats.py `_COUPON_EVENTS`, each with the space its key puts after it."""
cdef str _NOT_ISSUED = "coupon_not_issued"
cdef str _OUT_OF_STOCK = "out_of_stock"


cdef str coupon_key(str event, object code, object member_id):
    """f"{event}{coupon_id_of(code, member_id)}" (engine/spending/coupons.py: the code's coupon id,
    its `-<member id>-<n>` cut off), made without the pieces between when all three are ASCII."""
    if type(code) is not str or type(member_id) is not str:
        raise Unusual()  # the pure code's (its error, if any)
    cdef Py_ssize_t head, kept, size = len(<str>code), member = len(<str>member_id), prefix = len(event)
    cdef const char* text
    cdef object key
    if not (PyUnicode_IS_COMPACT_ASCII(code) and PyUnicode_IS_COMPACT_ASCII(member_id)):  # `event`: ours, ASCII
        return event + coupon_id_of(code, member_id)
    text = <const char*>PyUnicode_DATA(code)
    head = size - 1  # the last dash: the head is what comes before it ("" when there is none)
    while head >= 0 and text[head] != b'-':
        head -= 1
    head = max(head, 0)
    kept = head
    if head >= member + 1 and text[head - member - 1] == b'-' and \
            memcmp(text + head - member, PyUnicode_DATA(member_id), member) == 0:
        kept = head - member - 1
    key = PyUnicode_New(prefix + kept, 127)
    memcpy(PyUnicode_DATA(key), PyUnicode_DATA(event), prefix)
    memcpy(<char*>PyUnicode_DATA(key) + prefix, text, kept)
    return <str>key


cdef str not_issued_key(object note):
    """The key of a `coupon_not_issued` entry the pure code counts: f"out_of_stock {coupon id}" when
    its note says so; None when it counts none."""
    if type(note) is not str:
        raise Unusual()
    coupon_id, _, why = (<str>note).rpartition(": ")
    return f"{_OUT_OF_STOCK} {coupon_id}" if why == _OUT_OF_STOCK else None


cdef enum:
    KNOWN = 16  # triples counted by identity, without a tuple or a hash


def count_outcomes(list kinds, list results):
    """"kind outcome reason" -> transactions (each transaction's kind in `kinds`), in the order
    each was first seen; None when the lists differ in length (the pure code raises) or hold a kind
    that is not a str or a result that is not a TxnResult. The first KNOWN distinct
    triples are counted by the identity of their three strings (a batch's transactions share the
    few words the reader and the engine use), each new one put in `seen` where it first comes,
    so the order stays; equal strings that are other objects still meet in `seen`."""
    cdef dict seen = {}
    cdef dict outcomes = {}
    cdef list triples = []  # the triples known by identity (holding their strings)
    cdef PyObject* known_kinds[KNOWN]
    cdef PyObject* outs[KNOWN]
    cdef PyObject* reasons[KNOWN]
    cdef Py_ssize_t counts[KNOWN]
    cdef PyObject* kind
    cdef PyObject* outcome
    cdef PyObject* reason
    cdef Py_ssize_t i, j, known = 0, n = len(kinds)
    if len(results) != n:
        return None
    for i in range(n):
        named, result = kinds[i], results[i]
        if type(named) is not str or type(result) is not _RESULT:
            return None
        kind, outcome, reason = <PyObject*>named, slot(result, OUTCOME), slot(result, REASON)
        for j in range(known):
            if known_kinds[j] == kind and outs[j] == outcome and reasons[j] == reason:
                counts[j] += 1
                break
        else:
            triple = (<object>kind, <object>outcome, <object>reason)
            count = seen.get(triple)
            if known < KNOWN:
                if count is None:
                    seen[triple] = 0
                known_kinds[known], outs[known], reasons[known], counts[known] = kind, outcome, reason, 1
                triples.append(triple)
                known += 1
            else:
                seen[triple] = 1 if count is None else count + 1
    for j in range(known):
        triple = triples[j]
        seen[triple] += counts[j]
    for (kind_, outcome_, reason_), count in seen.items():
        key = f"{kind_ if kind_ in _KINDS else 'unknown'} {outcome_} {reason_}"
        outcomes[key] = outcomes.get(key, 0) + count
    return outcomes


def count_ledger_common(stats, list ledger, dict coupons not None):
    """(Renamed when it took `coupons`: a build from before lacks the name, so batch_stats counts
    by the pure code and the start says so, instead of every batch failing on two arguments.)
    Add what the entries of kinds other than tier moves did to `stats`, but what they count by
    coupon, which goes into `coupons` (empty) in the order the pure code counts it; the tier moves
    come back, in order (all of the ledger, and nothing added or counted, when this code does not
    expect it)."""
    try:
        return _count_common(stats, ledger, coupons)
    except Unusual:
        coupons.clear()
        return ledger


cdef list _count_common(stats, list ledger, dict coupons):
    cdef list rare = []
    cdef str key
    cdef int64_t awarded = 0, deducted = 0, reversed_ = 0, expired = 0, redeemed = 0, restored = 0, growth = 0
    cdef int64_t principal = 0, bonus = 0, points, value, extra
    for entry in ledger:
        if type(entry) is not _ENTRY:
            raise Unusual()
        kind = field(entry, KIND)
        if type(kind) is not str:
            raise Unusual()  # the pure code's; for a str, the order of the tests below is free
        if kind in _AWARDS:  # the commonest first: a test of a str's equality is a call
            points = add(amount(entry, POINTS), amount(entry, PENDING))
            if points > 0:
                awarded = add(awarded, points)
            else:
                deducted = take(deducted, points)
        elif kind in _COUPON_EVENTS:
            key = coupon_key(_COUPON_EVENTS[kind], field(entry, CODE), field(entry, MEMBER))
            coupons[key] = coupons.get(key, 0) + 1
        elif kind == _TIER:
            rare.append(entry)
            continue
        elif kind == "void":  # held points an operator voided: taken by an operator, as a deduction is
            deducted = take(deducted, add(amount(entry, POINTS), amount(entry, PENDING)))
        elif kind == "reverse":
            reversed_ = take(reversed_, add(amount(entry, POINTS), amount(entry, PENDING)))
        elif kind == "expire":
            expired = take(expired, add(amount(entry, POINTS), amount(entry, PENDING)))
        elif kind == "redeem":
            redeemed = take(redeemed, amount(entry, POINTS))
        elif kind == "restore":
            restored = add(restored, amount(entry, POINTS))
        elif kind == _NOT_ISSUED:
            key = not_issued_key(field(entry, NOTE))
            if key is not None:
                coupons[key] = coupons.get(key, 0) + 1
        points = amount(entry, GROWTH)
        if points > 0:
            growth = add(growth, points)
        value, extra = amount(entry, VALUE), amount(entry, BONUS)
        if value or extra:
            principal, bonus = add(principal, value), add(bonus, extra)
    stats.points_awarded += awarded
    stats.points_reversed += reversed_
    stats.points_expired += expired
    stats.points_redeemed += redeemed
    stats.points_restored += restored
    stats.points_deducted += deducted
    stats.growth_awarded += growth
    stats.stored_value += principal
    stats.bonus_value += bonus
    return rare


cdef str _ACCEPTED = "accepted"
cdef str _REJECTED = "rejected"


def rejected_and_twins(list results):
    """actors/batch_stats.py `rejected_and_twins_pure`: two loops over the results' slots (a result
    carries its transaction's id), the second only when something was rejected; None when one is
    not a TxnResult. An outcome is compared by identity with the engine's word first (the same
    interned string), by value otherwise."""
    cdef Py_ssize_t i, n = len(results)
    cdef set ids = set()
    cdef list found = []
    cdef PyObject* outcome
    for i in range(n):
        result = results[i]
        if type(result) is not _RESULT:
            return None
        outcome = slot(result, OUTCOME)
        if outcome != <PyObject*>_ACCEPTED and (outcome == <PyObject*>_REJECTED or <object>outcome == _REJECTED):
            ids.add(<object>slot(result, RESULT_ID))
    if not ids:
        return found
    for i in range(n):
        if <object>slot(results[i], RESULT_ID) in ids:
            found.append(i)
    return found
