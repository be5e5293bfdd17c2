"""SPEC §2 bounds: amounts, points and balances stay within ±10^15 and times within the years
2000-2100. Checked on what arrives and again before a change is applied, so that no input can
make a member unreadable: every stored integer stays far inside 64 bits, every time inside
what the calendar can name."""

from engine.members import Member
from engine.rules import MAX_AMOUNT
from engine.transactions import Transaction
from engine.types import Day, Minor

try:
    import cython

    COMPILED = cython.compiled
except ImportError:  # the pure engine needs no Cython installed
    COMPILED = False

__all__ = ["EARLIEST_MS", "LATEST_MS", "LIMIT", "NOT_AN_INTEGER", "all_fit", "fits", "input_problem",
           "refund_amount", "room_to_earn", "room_to_restore", "valid_time"]

LIMIT = MAX_AMOUNT
"""The largest amount (minor units), point count or balance patron takes, either sign: the
same bound as the rules' own amounts."""
_LEAST = -LIMIT
"""Made once: negating LIMIT makes a new integer each time (10^15 is not a cached small one)."""
_MOST = LIMIT
"""LIMIT as a C integer compiled (bounds.pxd), for sums that are C integers there."""
NOT_AN_INTEGER = "not_an_integer"
"""The reason for a time, amount, quantity or points that is not exactly an `int`."""
EARLIEST_MS = 946_684_800_000
"""2000-01-01T00:00:00Z."""
LATEST_MS = 4_133_980_800_000
"""2101-01-01T00:00:00Z, the first instant after the year 2100."""


def fits(*values: int) -> bool:
    return all_fit(values)


def all_fit(values: tuple[int, ...]) -> bool:
    """`fits` for a tuple: compiled, a C call (`fits`' star arguments make it a Python one)."""
    # A loop: min() and max() each parse their keywords by format string on Python 3.11 (about
    # 2,500 instructions a call, twice a transaction), and all() over a generator makes one.
    for value in values:  # noqa: SIM110
        if not _LEAST <= value <= LIMIT:
            return False
    return True


def valid_time(ms: int) -> bool:
    return EARLIEST_MS <= ms < LATEST_MS


def input_problem(txn: Transaction) -> str:
    """`not_an_integer` for a time, amount, quantity or points that is not exactly an `int`,
    `negative_amount` for a line with a negative amount or quantity, else `bad_timestamp` or
    `amount_too_large` for a transaction whose fields are out of bounds (amounts of each line
    and of the whole; quantities too, as they multiply points). The lines are read once."""
    # Only a Transaction built by hand can carry a float, a bool or an int subclass (every decoder
    # makes ints); the compiled engine reads these fields as C integers in places, truncating a
    # float and raising on a NaN where the .py keeps them, so neither engine takes one.
    if type(txn.occurred_at_ms) is not int or type(txn.amount_minor) is not int or type(txn.points) is not int:
        return NOT_AN_INTEGER
    paid, too_large = 0, False
    for line in txn.lines:
        amount, quantity = line.paid_minor, line.quantity
        if type(amount) is not int or type(quantity) is not int:
            return NOT_AN_INTEGER
        amount_at, quantity_at = _place(amount), _place(quantity)
        if amount_at < 0 or quantity_at < 0:
            return "negative_amount"
        if too_large or amount_at or quantity_at:
            too_large = True
        else:  # the sum stops at the first past LIMIT, so it is never more than twice LIMIT
            paid = _sum(paid, amount)
            too_large = paid > _MOST
    if not valid_time(txn.occurred_at_ms):
        return "bad_timestamp"
    if not _LEAST <= txn.amount_minor <= LIMIT or txn.points > LIMIT:
        return "amount_too_large"
    return "amount_too_large" if too_large else ""


def refund_amount(txn: Transaction) -> Minor:
    """What a refund (or a purchase) states: `amount_minor` when given, else the sum of its lines
    (SPEC §5); 0 when it states neither. Here, compiled, not beside Transaction (transactions.py
    stays Python): a refund asks twice, and a Python function summing a generator cost about
    1,500 instructions a call."""
    if txn.amount_minor:
        return txn.amount_minor
    paid = 0
    for line in txn.lines:
        paid += line.paid_minor
    return paid


def room_to_earn(member: Member, day: Day, points: int, growth: int, spend: int,
                 from_pending: int = 0) -> bool:
    """Whether a change of points, growth and eligible spend (either sign) keeps the change
    itself and every balance and sum it moves within bounds. Held and pending points count with
    the spendable ones: they become spendable later without another check. `from_pending`: how
    much of a negative change cancels points still pending (a refund's original keeps them there
    first), which leaves the spendable balance as it is."""
    if not (_LEAST <= points <= LIMIT and _LEAST <= growth <= LIMIT and _LEAST <= spend <= LIMIT):
        return False
    return _room_for(member, day, points, growth, spend, from_pending)


def _room_for(member: Member, day: Day, points: int, growth: int, spend: int, from_pending: int) -> bool:
    """`room_to_earn` for a change within ±LIMIT, `from_pending` within [0, -points] (what
    `pending_to_cancel` gives). Compiled, each is a C integer (bounds.pxd), converted once where
    each of the ten sums below converted it again, and the min and max were Python compares."""
    # Every balance and sum is kept within ±LIMIT (each change is checked here, each imported
    # figure by opening.py), so each sum below fits 64 bits: _sum_fits takes C integers compiled.
    # The spendable and pending points are bounded each on its own as well as together: a debt
    # taken while points were pending could otherwise pass -LIMIT (and, repeated, 64 bits). A gain
    # is bounded in the pending points wherever it lands, so one that goes to the spendable points
    # is refused when the pending ones and it would pass 10^15 together, which the sum above
    # allows only beside a debt.
    day_points = member.day_points
    return (_sum3_fits(member.points, member.pending, points)
            and _sum_fits(member.points, min(points + from_pending, 0))
            and _sum_fits(member.pending, max(points, 0))
            and _sum_fits(member.growth, growth) and _sum_fits(member.total_points, points)
            and _sum_fits(member.since_points, points) and _sum_fits(member.since_growth, growth)
            and _sum_fits(member.total_spend, spend) and _sum_fits(member.since_spend, spend)
            and _sum_fits(day_points.get(day, 0), max(points, 0)))


def room_to_restore(member: Member, points: int) -> bool:
    """Whether points a redeem took may be given back (its refund), pending ones counted as in
    `room_to_earn`. They were within bounds when taken, but the room they left may be filled
    since by points the lifetime sums never counted (an imported opening balance) or no longer
    count (what a clamped take-back could not recover, a debt the annual reset cleared), and
    undoing a redeem moves no lifetime sum."""
    return _LEAST <= points <= LIMIT and _sum3_fits(member.points, member.pending, points)


def _place(value: int) -> int:
    """-1 below 0, 1 past LIMIT, else 0, for an exact int. Compiled, its C value is compared
    (bounds.pxd's place): a line's amount and quantity were four Python compares a line."""
    if COMPILED:
        return place(value, _MOST)  # noqa: F821 (C, bounds.pxd)
    return -1 if value < 0 else 1 if value > LIMIT else 0


def _sum(a: int, b: int) -> int:
    return a + b


def _sum_fits(a: int, b: int) -> bool:
    return -_MOST <= a + b <= _MOST


def _sum3_fits(a: int, b: int, c: int) -> bool:
    return -_MOST <= a + b + c <= _MOST
