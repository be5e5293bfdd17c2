"""The gRPC service Events: Subscribe streams every shard's outbox to a notifier (see
actors/event_feed.py for the order, position and buffering contracts)."""

import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc

from actors.batch_outcome import original
from actors.coordinator import Coordinator
from actors.event_feed import EventFeed, OutOfRangeError, Subscription, check_kinds, parse_position
from actors.gateway import Unreadable, abort_with, status_code
from engine.errors import InvalidRequestError, OverloadedError, PatronError, ShardUnavailableError

__all__ = ["OLDEST_POSITION_KEY", "EventsService", "for_a_reader"]

OLDEST_POSITION_KEY = "patron-oldest-position"
"""Trailing metadata of an OUT_OF_RANGE answer: the position to resume from."""
SUBSCRIBER_KEY = "patron-subscriber"
"""Request metadata: a name for the subscriber in metrics (default: its address)."""
MAX_SUBSCRIBERS = 32
"""Subscribers at once, over a gateway (each node gateway counts its own). Each reads every
shard's outbox as events come (an urgent call to each shard per page) and is a metrics series of
its own: a notifier fleet is a handful of services, and without a bound a client opening streams
in a loop made the shards' work grow with each one."""


class EventsService:
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.feed: EventFeed | None = None
        self._numbers = itertools.count(1)

    def start(self) -> None:
        """Once the shards are up."""
        self.feed = EventFeed(self.coordinator.lanes, self.coordinator.metrics)
        self.feed.start()

    async def stop_streams(self) -> None:
        """Before gRPC's grace: it waits for the calls in flight, and a subscription never ends."""
        if self.feed is not None:
            await self.feed.stop_streams()

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.close()

    async def Subscribe(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        try:
            if isinstance(request, Unreadable):
                raise InvalidRequestError(request.reason)
            if self.feed is None:
                raise ShardUnavailableError("patron is starting; subscribe again shortly")
            layout = self.coordinator.layout
            floors = self.coordinator.event_floors  # shards a restore took away gave positions too
            after = parse_position(request.after, len(self.feed.lanes), layout.first_shards or layout.shards,
                                   max(floors, default=-1) + 1)
            kinds = check_kinds(list(request.kinds))
            if self.feed.subscribers >= MAX_SUBSCRIBERS:  # after the request's checks: a bad one is no retry
                raise OverloadedError(f"{self.feed.subscribers} subscribers are reading events already, the most "
                                      f"a gateway serves at once; subscribe again when one has ended", retry_after=1.0)
            subscription = Subscription(self.feed, after, kinds)
            async for message in self._stream(subscription, context):
                yield message
        except OutOfRangeError as error:
            context.set_trailing_metadata(((OLDEST_POSITION_KEY, error.oldest),))
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(error))
        except Exception as error:
            await abort_with(context, for_a_reader(error))

    async def _stream(self, subscription: Subscription, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """The messages as the shards' outboxes hold them (the gateway's handlers send bytes as they are)."""
        metrics, feed = self.coordinator.metrics, subscription.feed
        name = f"{_subscriber(context)}/{next(self._numbers)}"
        metrics.event_lag.labels(name).set_function(subscription.lag_seconds)
        feed.subscribed(+1)
        sent = 0
        try:
            async for batch in subscription.batches():
                for message in batch:
                    yield message
                    sent += 1
                metrics.events_delivered.inc(sent)
                sent = 0
        finally:
            metrics.events_delivered.inc(sent)
            feed.subscribed(-1)
            metrics.event_lag.remove(name)


def _subscriber(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == SUBSCRIBER_KEY and isinstance(value, str) and value:
            return value[:64]
    return context.peer()


def for_a_reader(error: Exception) -> Exception:
    """A shard gone mid-stream, in a subscriber's words: a write's ("may have been applied in full,
    in part or not at all: send it again") told it nothing (an outside probe)."""
    if status_code(error) is grpc.StatusCode.UNAVAILABLE and not isinstance(original(error), PatronError):
        return ShardUnavailableError(f"a shard is unavailable (restarting?): subscribe again from the last position "
                                     f"received; no event is lost ({original(error)})")
    return error
