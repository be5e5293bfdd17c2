"""`patron member quote` and `patron member coupons`: what a basket would cost and earn a member,
and the member's coupons, from a running patron (service Wallet)."""

import argparse
import json
from typing import Any

from google.protobuf.json_format import MessageToDict

from cli.inputs import path, utf8_text
from cli.show import aligned, money
from client.patron_client import MOST_QUANTITY
from engine.bounds import LIMIT
from engine.errors import PatronError
from engine.spending.member_coupons import COUPON_STATUSES
from proto import patron_pb2 as pb

__all__ = ["add_parsers", "basket_lines", "coupon_table", "line_words", "quote_text"]

_LINE_FORM = ("SKU:QTY:PRICE[:CATEGORY] (PRICE: what the line costs, in minor units; SKU empty for a line without "
              "a barcode, and one with ':' in it goes in a --basket file)")


def add_parsers(member: argparse._SubParsersAction, remote: Any) -> None:
    quote = remote(member.add_parser(
        "quote", help="what a basket would cost and earn a member now, and what they could spend on it",
        description="Read-only: member prices after the tier discount, the points the purchase would earn, the "
                    "largest points-as-cash deduction, usable coupons and the stored-value balance."))
    quote.add_argument("member_id")
    basket = quote.add_mutually_exclusive_group(required=True)
    basket.add_argument("--basket", type=path, metavar="FILE",
                        help='a JSON file: a list of lines, or {"lines": [...]}, each as a purchase line '
                             '(sku, category, paid_minor, quantity, ...)')
    basket.add_argument("--line", action="append", type=line_words, metavar="SKU:QTY:PRICE[:CATEGORY]",
                        help="a basket line; PRICE is what the line costs in all, in minor units (its "
                             "paid_minor: two at 25.00 is SKU:2:5000); an empty SKU is a line without a barcode "
                             "(:1:999:loose); a SKU with ':' in it goes in --basket; repeat for more")
    quote.add_argument("--json", action="store_true", help="the answer as JSON (gRPC's field names)")
    quote.set_defaults(run=member_quote)
    coupons = remote(member.add_parser("coupons", help="a member's coupons, with what each gives"))
    coupons.add_argument("member_id")
    coupons.add_argument("--status", default="", choices=COUPON_STATUSES,
                         help="only coupons in this state")
    coupons.add_argument("--json", action="store_true", help="as JSON (gRPC's field names)")
    coupons.set_defaults(run=member_coupons)


def basket_lines(args: argparse.Namespace) -> list[dict]:
    """The basket from --line words or a --basket file; a bad one is one clear PatronError."""
    if args.line:
        return args.line
    try:
        document = json.loads(utf8_text(args.basket))
    except json.JSONDecodeError as error:
        raise PatronError(f"{args.basket}: not JSON: {error}") from None
    lines = document.get("lines") if isinstance(document, dict) else document
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise PatronError(f'{args.basket}: expected a list of line objects or {{"lines": [...]}}')
    known = set(pb.LineItem.DESCRIPTOR.fields_by_name)
    for number, line in enumerate(lines, start=1):
        if unknown := sorted(set(line) - known):
            raise PatronError(f"{args.basket}: line {number}: unknown field {unknown[0]!r} "
                              f"(a line has {', '.join(sorted(known))})")
    return lines


def line_words(text: str) -> dict:
    """A --line as a basket line; a malformed one is an argument out of its range (argparse's
    usage and exit 2), told before any server is asked. An empty SKU is a line without a barcode
    (`:1:999:loose`: one the till could not scan, rules.md `no_barcode_lines_earn`). A SKU with
    ':' in it cannot be told apart here, the category being optional (`A:1:2:3` is SKU `A` in
    category `3`, or SKU `A:1`): such a line goes in a --basket file."""
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4):
            raise ValueError
        line = {"sku": parts[0], "quantity": int(parts[1]), "paid_minor": int(parts[2])}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {_LINE_FORM}, got {text!r}") from None
    # Told here in the operator's words: past the wire's bounds protobuf names neither the line
    # nor the limit.
    if not -LIMIT <= line["paid_minor"] <= LIMIT:
        raise argparse.ArgumentTypeError(f"PRICE is beyond ±10^15 minor units (README, Limits), got {text!r}")
    if not -MOST_QUANTITY - 1 <= line["quantity"] <= MOST_QUANTITY:
        raise argparse.ArgumentTypeError(
            f"QTY is beyond ±{MOST_QUANTITY:,} (a line's quantity is 32 bits), got {text!r}")
    if len(parts) == 4:
        line["category"] = parts[3]
    return line


def member_quote(args: argparse.Namespace) -> int:
    from cli.admin import _client

    lines = basket_lines(args)
    with _client(args) as client:
        try:
            answer = client.quote(args.member_id, lines)
        except (TypeError, ValueError) as error:  # a field of the wrong type or size in the basket
            raise PatronError(f"{args.basket or '--line'}: {error}") from None
    print(_json(answer) if args.json else quote_text(answer))
    return 0


def member_coupons(args: argparse.Namespace) -> int:
    from cli.admin import _client

    with _client(args) as client:
        held = client.coupons(args.member_id, args.status)
    print(_json(pb.CouponList(coupons=held)) if args.json else coupon_table(held))
    return 0


def _json(message: Any) -> str:
    return json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2, ensure_ascii=False)


def _money(minor: int) -> str:
    return money(minor) or "0.00"


def quote_text(answer: pb.QuoteResponse) -> str:
    rows = [("#", "sku", "qty", "price", "member price")]
    rows += [(str(n), q.line.sku or "-", str(q.line.quantity or 1), _money(q.price_minor), _money(q.line.paid_minor))
             for n, q in enumerate(answer.lines, start=1)]
    cash = (f"{answer.cash_points:,} points for {_money(answer.cash_value_minor)} off" if answer.cash_points
            else f"none ({answer.cash_reason})")
    summary = [("member", f"{answer.member_id} ({answer.tier}), on {answer.day}"),
               ("total", f"{_money(answer.total_minor)}, at member prices {_money(answer.member_total_minor)}"),
               ("earns", f"{answer.points:,} points, {answer.growth:,} growth"
                         + (f" ({answer.points_reason})" if answer.points_reason else "")),
               ("points as cash", cash + f"; {answer.available_points:,} points available"),
               ("stored value", f"{_money(answer.stored_value + answer.bonus_value_minor)} "
                                f"(principal {_money(answer.stored_value)}, bonus {_money(answer.bonus_value_minor)})")]
    summary += [("coupon", f"{c.coupon.instance.code}: {_money(c.value_minor)} off" if c.coupon.kind != "gift"
                 else f"{c.coupon.instance.code}: gift {c.coupon.gift_sku}") for c in answer.coupons]
    summary += [("not usable", f"{c.coupon.instance.code} ({c.reason})") for c in answer.unusable_coupons]
    return aligned(rows, numeric={0, 2, 3, 4}) + "\n\n" + "\n".join(f"{label:<15} {value}" for label, value in summary)


def coupon_table(held: list[pb.HeldCoupon]) -> str:
    if not held:
        return "no coupons"
    rows = [("code", "status", "valid", "gives")]
    rows += [(h.instance.code, h.instance.status, f"{h.instance.valid_from} .. {h.instance.valid_to}", _terms(h))
             for h in held]
    return aligned(rows)


def _terms(held: pb.HeldCoupon) -> str:
    gives = {"voucher": f"{_money(held.value_minor)} off", "discount": f"pay {held.percent} %",
             "gift": f"gift {held.gift_sku}"}.get(held.kind, "no longer in the rules")
    if held.designated:
        gives += " of designated lines"
    return gives + (f", from {_money(held.min_charge_minor)}" if held.min_charge_minor else "")
