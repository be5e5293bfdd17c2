"""Notices: what a notifier (SMS, e-mail, WeChat) acts on, emitted as plain data beside the
ledger entry of the change that caused them, so they are committed exactly when it is."""

from typing import Final

import msgspec
from msgspec import Struct

from engine.types import Day, MemberId

__all__ = [
    "ANOMALY_FLAGGED",
    "BIRTHDAY",
    "COUPON_EXPIRING",
    "COUPON_ISSUED",
    "NOTICE_KINDS",
    "POINTS_EXPIRING",
    "TIER_CHANGED",
    "CouponIssued",
    "Notice",
    "encode_detail",
    "notice",
]

TIER_CHANGED: Final = "tier_changed"
ANOMALY_FLAGGED: Final = "anomaly_flagged"
POINTS_EXPIRING: Final = "points_expiring"
COUPON_ISSUED: Final = "coupon_issued"
COUPON_EXPIRING: Final = "coupon_expiring"
BIRTHDAY: Final = "birthday"
NOTICE_KINDS: Final = (TIER_CHANGED, ANOMALY_FLAGGED, POINTS_EXPIRING, COUPON_ISSUED, COUPON_EXPIRING, BIRTHDAY)

_encode_json = msgspec.json.Encoder().encode


class Notice(Struct, array_like=True, gc=False):
    """One event for notifiers: `day` is the local day it happened (the transaction's day, or
    the date of the midnight run that found it); `detail` is a JSON object as text."""

    kind: str
    member_id: MemberId
    day: Day
    detail: str


class CouponIssued(Struct, gc=False):
    """A coupon_issued notice's detail (an enrollment's welcome coupon: one per new member):
    encoded, the same JSON object as the dict of these keys in this order, without the dict to
    build and its keys to encode on every issue."""

    code: str
    coupon_id: str
    valid_from: str
    valid_to: str


def notice(kind: str, member_id: MemberId, day: Day, **detail: object) -> Notice:
    return Notice(kind, member_id, day, encode_detail(detail))


def encode_detail(detail: dict[str, object]) -> str:
    """A notice's detail as JSON text, its keys in the order given."""
    return _encode_json(detail).decode()
