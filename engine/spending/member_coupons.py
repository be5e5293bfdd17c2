"""A member's coupons as a till or a back office sees them (docs/rules.md, "Coupons"): each instance
with what its coupon gives under the rules in force."""

from msgspec import Struct

from engine.errors import InvalidRequestError
from engine.members import CouponInstance, Member
from engine.programme import Programme
from engine.summary import CouponView, coupon_view

__all__ = ["COUPON_STATUSES", "HeldCoupon", "held_coupon", "member_coupons"]

COUPON_STATUSES = ("unused", "used", "expired", "void")


class HeldCoupon(Struct, omit_defaults=True):
    """An instance (as a member's summary shows it) and its coupon's terms: `kind` voucher
    (`value_minor` off), discount (`percent` to pay) or gift (`gift_sku`); `designated` when it
    applies only to designated lines. `kind` is empty when the rules no longer define the coupon."""

    instance: CouponView
    kind: str = ""
    value_minor: int = 0
    percent: int = 0
    gift_sku: str = ""
    min_charge_minor: int = 0
    designated: bool = False


def held_coupon(programme: Programme, instance: CouponInstance) -> HeldCoupon:
    coupon = programme.coupons.by_id.get(instance.coupon_id)
    held = HeldCoupon(coupon_view(instance))
    if coupon is not None:
        held.kind, held.value_minor, held.percent = coupon.kind, coupon.value_minor or 0, coupon.percent or 0
        held.gift_sku, held.min_charge_minor = coupon.gift_sku or "", coupon.min_charge_minor
        held.designated = not programme.coupons.designated[coupon.id].empty
    return held


def member_coupons(programme: Programme, member: Member, status: str = "") -> list[HeldCoupon]:
    """The member's instances sorted by code, only those in `status` when it is given."""
    if status and status not in COUPON_STATUSES:
        raise InvalidRequestError(f"status: expected one of {', '.join(COUPON_STATUSES)} (or empty for all), "
                                  f"got {status!r}")
    return [held_coupon(programme, instance) for instance in sorted(member.coupons, key=lambda c: c.code)
            if not status or instance.status == status]
