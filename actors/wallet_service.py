"""The gRPC service Wallet: quotes at the till and a member's coupons. Both are reads of the
shard's committed state, like GetMember: they wait for no batch, neither queued nor in progress
(actors/committed_reads.py)."""

from typing import Any

import grpc

from actors.coordinator import Coordinator
from actors.gateway import answers_errors
from actors.wire import held_coupon_message, line_items, quote_message
from proto import patron_pb2 as pb

__all__ = ["WalletService"]


class WalletService:
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def _read(self, member_id: str, method: str, *args: Any) -> Any:
        return await self.coordinator.read_member(member_id, method, *args)

    @answers_errors
    async def Quote(self, request: pb.QuoteRequest, context: grpc.aio.ServicerContext) -> pb.QuoteResponse:
        found = await self._read(request.member_id, "quote", request.member_id, line_items(request.lines),
                                 request.occurred_at_ms)
        return quote_message(found)

    @answers_errors
    async def ListCoupons(self, request: pb.ListCouponsRequest, context: grpc.aio.ServicerContext
                          ) -> pb.CouponList:
        held = await self._read(request.member_id, "coupons", request.member_id, request.status)
        return pb.CouponList(coupons=[held_coupon_message(h) for h in held])
