"""Quotes while ingesting: one till asks Wallet.Quote back to back while client processes stream
batches open loop; quote latency percentiles beside the batches' acknowledgement latency. A
quote goes ahead of queued batches and waits only for the call its shard is running."""

import sys
import threading
import time

from bench.harness import Driven, Harness
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.timeline import Timeline, percentile
from client import PatronClient

__all__ = ["run"]

MEMBER = "QUOTE-TILL-1"
BASKET = [{"sku": "W-1", "category": "wine", "paid_minor": 20000, "quantity": 2},
          {"sku": "F-1", "category": "infant_formula", "paid_minor": 15000},
          {"sku": "B-1", "category": "bakery", "paid_minor": 3990}]


def run(settings: Settings) -> Result:
    rate = settings.pick(settings.rate, 7_000.0, 2_000.0)
    seconds = settings.pick(settings.seconds, 30.0, 10.0)
    batch_size = settings.batch_size or min(1000, max(10, int(rate // 20)))
    members = settings.pick(settings.members, 100_000, 10_000)
    offered = int(rate * seconds)
    with Harness(settings) as bench:
        server = bench.serve()
        stream = bench.day_stream(offered, members, "quote")
        client = server.client()
        client.enroll(MEMBER)
        jobs = bench.stream_jobs(server.address, stream, batch_size, rate=rate / settings.clients, seconds=seconds)
        driven: list[Driven] = []
        loader = threading.Thread(target=lambda: driven.append(bench.drive(server, jobs, f"quote at {rate:,.0f}/s",
                                                                           offered)))
        loader.start()
        asked = _quote_while(client, loader)
        loader.join()
        if not driven:
            raise RuntimeError("quote: the ingesting clients failed (see above)")
        timeline = Timeline.of(driven[0].reports, driven[0].start)
        common = bench.common(client, driven[0].cpu_seconds, timeline.transactions)
    quotes = sorted(latency for at, latency in asked if at >= driven[0].start)
    batches = timeline.latencies()
    q50, q99, b50, b99 = (round(percentile(values, share), 4) for values, share in
                          ((quotes, 0.5), (quotes, 0.99), (batches, 0.5), (batches, 0.99)))
    fields = {"quotes": len(quotes), "quote_p50_seconds": q50, "quote_p99_seconds": q99,
              "quote_max_seconds": round(quotes[-1], 4) if quotes else None,
              "batch_p50_seconds": b50, "batch_p99_seconds": b99, "offered_per_second": rate,
              "transactions": timeline.transactions, "batch_size": batch_size, **common}
    rows = [("ingesting", f"{rate:,.0f} transactions/s offered for {seconds:.0f} s in batches of {batch_size} "
                          f"({settings.clients} clients), {timeline.transactions:,} answered"),
            ("quotes", f"{len(quotes):,} back to back by one till: p50 {q50 * 1000:.1f} ms, p99 {q99 * 1000:.1f} ms"),
            ("batches", f"acknowledged p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms (from the scheduled send)"),
            *common_rows(common, "transactions")]
    chart = Chart(f"quote latency while ingesting {rate:,.0f} transactions/s", unit="ms",
                  bars=[("quote p50", q50 * 1000), ("quote p99", q99 * 1000), ("batch p50", b50 * 1000),
                        ("batch p99", b99 * 1000)])
    parameters = settings.parameters(rate=rate, seconds=seconds, batch_size=batch_size, members=members)
    return Result("quote", fields, parameters, rows, chart)


def _quote_while(client: PatronClient, loader: threading.Thread) -> list[tuple[float, float]]:
    """(when asked, seconds to the answer) for each quote, until the loader is done."""
    asked = []
    while loader.is_alive():
        started = time.monotonic()
        client.quote(MEMBER, BASKET)
        asked.append((started, time.monotonic() - started))
    print(f"quote: {len(asked):,} quotes asked", file=sys.stderr, flush=True)
    return asked
