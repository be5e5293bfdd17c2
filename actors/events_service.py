"""The gRPC service Events: Subscribe streams every shard's outbox to a notifier (see
actors/event_feed.py for the order, position and buffering contracts)."""

import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc

from actors.coordinator import Coordinator
from actors.event_feed import EventFeed, OutOfRangeError, Subscription, check_kinds, parse_position
from actors.gateway import Unreadable, _abort
from engine.calendar import iso
from engine.errors import InvalidRequestError, ShardUnavailableError
from proto import patron_pb2 as pb

__all__ = ["OLDEST_POSITION_KEY", "EventsService"]

OLDEST_POSITION_KEY = "patron-oldest-position"
"""Trailing metadata of an OUT_OF_RANGE answer: the position to resume from."""
SUBSCRIBER_KEY = "patron-subscriber"
"""Request metadata: a name for the subscriber in metrics (default: its address)."""
_COUNT_EVERY = 256


class EventsService:
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.feed: EventFeed | None = None
        self._numbers = itertools.count(1)
        self._days: dict[int, str] = {}

    def start(self) -> None:
        """Once the shards are up."""
        self.feed = EventFeed(self.coordinator.lanes, self.coordinator.metrics)
        self.feed.start()

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.close()

    async def Subscribe(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Event]:
        try:
            if isinstance(request, Unreadable):
                raise InvalidRequestError(request.reason)
            if self.feed is None:
                raise ShardUnavailableError("patron is starting; subscribe again shortly")
            after = parse_position(request.after, len(self.feed.lanes))
            subscription = Subscription(self.feed, after, check_kinds(list(request.kinds)))
            async for event in self._stream(subscription, context):
                yield event
        except OutOfRangeError as error:
            context.set_trailing_metadata(((OLDEST_POSITION_KEY, error.oldest),))
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(error))
        except Exception as error:
            await _abort(context, error)

    async def _stream(self, subscription: Subscription, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[pb.Event]:
        metrics, feed = self.coordinator.metrics, subscription.feed
        name = f"{_subscriber(context)}/{next(self._numbers)}"
        metrics.event_lag.labels(name).set_function(subscription.lag_seconds)
        feed.subscribed(+1)
        unsent = 0
        try:
            async for position, event in subscription.events():
                yield pb.Event(position=position, kind=event.kind, member_id=event.member_id, day=self._iso(event.day),
                               detail=event.detail)
                unsent += 1
                if unsent == _COUNT_EVERY:
                    metrics.events_delivered.inc(unsent)
                    unsent = 0
        finally:
            metrics.events_delivered.inc(unsent)
            feed.subscribed(-1)
            metrics.event_lag.remove(name)

    def _iso(self, day: int) -> str:
        text = self._days.get(day)
        if text is None:
            if len(self._days) > 4096:
                self._days.clear()
            text = self._days[day] = iso(day)
        return text


def _subscriber(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == SUBSCRIBER_KEY and isinstance(value, str) and value:
            return value[:64]
    return context.peer()
