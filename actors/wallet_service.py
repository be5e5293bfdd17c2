"""The gRPC service Wallet: quotes at the till and a member's coupons. Both are reads of the
shard's committed state, like GetMember: they wait for no batch, neither queued nor in progress
(actors/committed_reads.py)."""

from typing import Any

import grpc

from actors.coordinator import Coordinator
from actors.gateway import answers_errors
from actors.wire import held_coupon_message, line_items, quote_message
from engine.errors import InvalidRequestError
from proto import patron_pb2 as pb

__all__ = ["MOST_QUOTE_LINES", "WalletService"]

MOST_QUOTE_LINES = 10_000
"""Lines in one quote's basket, as many as transactions in a batch: a quote of a million lines
(11 MB) took the gateway 20 s and its answer was more than a client reads by default (an outside
probe); no till's basket comes near."""


class WalletService:
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def _read(self, member_id: str, method: str, *args: Any) -> Any:
        return await self.coordinator.read_member(member_id, method, *args)

    @answers_errors
    async def Quote(self, request: pb.QuoteRequest, context: grpc.aio.ServicerContext) -> pb.QuoteResponse:
        if len(request.lines) > MOST_QUOTE_LINES:
            raise InvalidRequestError(f"lines: {len(request.lines):,} in one quote; the limit is {MOST_QUOTE_LINES:,}")
        found = await self._read(request.member_id, "quote", request.member_id, line_items(request.lines),
                                 request.occurred_at_ms)
        return quote_message(found)

    @answers_errors
    async def ListCoupons(self, request: pb.ListCouponsRequest, context: grpc.aio.ServicerContext
                          ) -> pb.CouponList:
        held = await self._read(request.member_id, "coupons", request.member_id, request.status)
        return pb.CouponList(coupons=[held_coupon_message(h) for h in held])
