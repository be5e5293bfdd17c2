"""Spending's own rate: the core scenario (replay in one process, then end to end through the
server) on a stream of which a fifth (--spending) redeems, recharges, pays and issues and uses coupons."""

from bench.core import measure
from bench.report import Result
from bench.settings import Settings

__all__ = ["SHARE", "run"]

SHARE = 0.2


def run(settings: Settings) -> Result:
    return measure(settings, "spending", settings.spending or SHARE)
