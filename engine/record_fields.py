"""The msgspec Structs scoring reads on every transaction, which the compiled engine reads as the C
structs they are (record_fields.pxd declares their layout to Cython; docs/decisions.md, "Struct
fields read as C fields"). engine/__init__.py imports its build, before any other engine
module, to check that each Struct is still laid out as it was compiled, and runs
the whole engine from its .py files, saying why, when one is not. The .py engine reads fields by
name and has nothing to check. Both make scoring's index records here (`txn_record`): compiled, as
the C struct, the way msgspec makes one."""

from msgspec import Struct

from engine.members import Held, Lot, Member, Profile
from engine.transactions import LineItem, Transaction, TxnRecord, TxnResult
from engine.types import Day, MemberId, Minor

try:
    import cython

    COMPILED = cython.compiled
except ImportError:  # the pure engine needs no Cython installed
    COMPILED = False

__all__ = ["defaults_problem", "layout_problems", "txn_record"]

RECORDS = (Held, LineItem, Lot, Member, Profile, Transaction, TxnRecord, TxnResult)


def layout_problems() -> list[str]:
    """Each Struct the build cannot read as compiled, and why; empty when it can."""
    problems = []
    for record in RECORDS:
        problem = _written_problem(record) or layout_problem(record.__name__.encode(), record)  # noqa: F821 (C, record_fields.pxd)
        if problem:
            problems.append(f"{record.__module__}.{record.__qualname__}: {problem}")
    if problem := defaults_problem(TxnRecord.__struct_fields__, TxnRecord.__struct_defaults__):
        problems.append(f"engine.transactions.TxnRecord: {problem}")
    return problems


NEW_RECORD_FILLS = (("refunded_minor", 0), ("reversed_points", 0), ("reversed_growth", 0), ("reversed_eligible", 0),
                    ("spent", None), ("since_began", -1), ("lapsed_points", 0), ("carry_moved", None))
"""The fields `new_record` (record_fields.pxd) is not given, and what C writes in each: TxnRecord's
defaults as written there by hand, so a default changed in transactions.py is told here."""


def defaults_problem(fields: tuple[str, ...], defaults: tuple) -> str:
    """Why the last fields of a TxnRecord and their defaults are not those new_record fills, or ""."""
    declared = tuple(zip(fields[-len(NEW_RECORD_FILLS):], defaults[-len(NEW_RECORD_FILLS):], strict=True))
    if declared == NEW_RECORD_FILLS and all(type(d) is type(f) for (_, d), (_, f) in zip(declared, NEW_RECORD_FILLS,
                                                                                         strict=True)):
        return ""
    return f"its last fields' defaults {declared} are not those new_record fills {NEW_RECORD_FILLS}"


def _written_problem(record: type) -> str:
    """Why fields of `record` could not be written directly as msgspec writes them, or ""."""
    if not issubclass(record, Struct):
        return "not a msgspec Struct"
    config = record.__struct_config__
    if config.frozen:
        return "frozen"
    return "tracked by the cyclic collector (gc=True)" if config.gc else ""


def txn_record(member_id: MemberId, kind: str, day: Day, points: int, growth: int, reason: str, rule_version: int,
               paid_minor: Minor = 0, eligible_minor: Minor = 0) -> TxnRecord:
    """`TxnRecord(member_id, kind, day, points, growth, reason, rule_version, paid_minor,
    eligible_minor)`: the index record of nearly every accepted transaction, its other fields
    TxnRecord's defaults. Compiled, made in C (new_record, record_fields.pxd), as the results are:
    msgspec's constructor parses its arguments and fills in the defaults, about 400 instructions."""
    if COMPILED:
        return new_record(TxnRecord, member_id, kind, day, points, growth, reason, rule_version,  # noqa: F821 (C, record_fields.pxd)
                          paid_minor, eligible_minor)
    return TxnRecord(member_id, kind, day, points, growth, reason, rule_version, paid_minor, eligible_minor)
