"""Prometheus metrics for one serve process: the gateway and every shard it owns.
Names follow Prometheus conventions: `patron_` prefix, base units, `_total` counters,
`_seconds` histograms. Shards count per batch; nothing here runs per transaction."""

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from actors.batch_stats import BatchStats
from actors.batch_wire import COMPILED

__all__ = ["Metrics"]

# Every counter and histogram also served a `_created` series, the time its process made it:
# series an SRE found in no list (docs/operations.md, "Every metric") and that no alert or panel
# needs (`process_start_time_seconds` says when the process started). prometheus_client's switch
# is for the whole process: every registry a patron process serves is one of these.
disable_created_metrics()

COUPON_EVENTS = {
    "issued": "Coupon instances given to members (by API, enrollment, upgrade or recharge bonus), by coupon id.",
    "used": "Coupon instances used at the till, by coupon id.",
    "expired": "Unused coupon instances expired by midnight runs, by coupon id.",
    "out_of_stock": "Coupon instances not issued because the coupon's inventory was used up, by coupon id.",
}
MOST_TAG_SERIES = 200
"""Manual tags are free text: each would be a series for Prometheus to keep, so past this many the
smallest are left out of the metrics (an operator tagging members one by one would otherwise grow
them without bound)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_SIZE_BUCKETS = (10, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000, 50_000)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_start_time_seconds, CPU, memory of the gateway
        PlatformCollector(registry=registry)
        self.transactions = Counter("patron_transactions_total",
                                    "Transactions answered, by kind, outcome and reason.",
                                    ["kind", "outcome", "reason"], registry=registry)
        self.points_awarded = Counter("patron_points_awarded_total",
                                      "Points earned (spendable or pending).", registry=registry)
        self.points_reversed = Counter("patron_points_reversed_total", "Points taken back by refunds.",
                                       registry=registry)
        self.points_deducted = Counter("patron_points_deducted_total",
                                       "Points taken by operators: negative adjustments and voided held points.",
                                       registry=registry)
        self.points_expired = Counter("patron_points_expired_total", "Points expired by midnight runs.",
                                      registry=registry)
        self.growth_awarded = Counter("patron_growth_awarded_total", "Growth (experience) earned.", registry=registry)
        self.anomalies = Counter(
            "patron_anomalies_flagged_total", "Crossings of the daily anomaly threshold: a member each local day it "
            "crosses, flagged already or not (one anomaly_flagged event each).",
            registry=registry)
        self.tier_changes = Counter("patron_tier_changes_total", "Members moved between tiers.",
                                    ["from_tier", "to_tier"], registry=registry)
        self.batch_latency = Histogram("patron_batch_latency_seconds",
                                       "From receipt of a batch to its acknowledgement.",
                                       buckets=LATENCY_BUCKETS, registry=registry)
        self.batches_in_flight = Gauge("patron_batches_in_flight", "Batches received and not yet acknowledged.",
                                       registry=registry)
        self.batches_refused = Counter("patron_batches_refused_total", "Batches refused, by gRPC status code.",
                                       ["code"], registry=registry)
        self.storage_full = Counter("patron_storage_full_total",
                                    "Batches, checkpoints and midnight runs refused because a shard's disk or map "
                                    "was full.",
                                    registry=registry)
        self.shard_apply = Histogram("patron_shard_apply_seconds",
                                     "Time a shard spends scoring the batches of one commit.",
                                     ["shard"], buckets=LATENCY_BUCKETS, registry=registry)
        self.shard_commit = Histogram("patron_shard_commit_seconds",
                                      "Time a shard spends writing and committing the batches of one commit.",
                                      ["shard"], buckets=LATENCY_BUCKETS, registry=registry)
        self.shard_disk_write = Histogram(
            "patron_shard_disk_write_seconds",
            "The part of a shard's commit in LMDB writing the commit's pages out and, with strict durability, "
            "waiting for the disk to confirm them (fdatasync).", ["shard"], buckets=LATENCY_BUCKETS, registry=registry)
        self.shard_commit_size = Histogram(
            "patron_shard_commit_transactions",
            "Transactions answered by one commit of a shard: the batches that queued up for it, together. Larger "
            "commits cost less a transaction; senders keeping more batches in flight make them larger.",
            ["shard"], buckets=COMMIT_SIZE_BUCKETS, registry=registry)
        self._shard_gauges(registry)
        self._midnight_gauges(registry)
        self._event_metrics(registry)
        self._spending_metrics(registry)

    def _shard_gauges(self, registry: CollectorRegistry) -> None:
        self.shard_up = Gauge("patron_shard_up", "1 when the shard answers, 0 when it is down or restarting.",
                              ["shard"], registry=registry)
        self.shard_restarts = Counter("patron_shard_restarts_total",
                                      "Times the shard's process was seen started again since this server started.",
                                      ["shard"], registry=registry)
        self.members = Gauge("patron_members", "Members per shard.", ["shard"], registry=registry)
        self.members_in_memory = Gauge("patron_members_in_memory", "Members a shard holds in memory (--hot-members).",
                                       ["shard"], registry=registry)
        self.member_loads = Gauge("patron_member_loads", "Members a shard's writes brought into memory from "
                                  "LMDB since it started (reads of the last commit, GetMember and quotes, do "
                                  "not).", ["shard"], registry=registry)
        self.mapping_drops = Gauge("patron_mapped_page_drops", "Times a shard gave LMDB's mapped pages back "
                                   "over --mapped-budget-mib, since it started.", ["shard"], registry=registry)
        self.members_tagged = Gauge("patron_members_tagged", "Members with a tag, computed or manual (every "
                                    f"computed tag, then the {MOST_TAG_SERIES} largest manual ones).", ["tag"],
                                    registry=registry)
        self.tags_not_shown = Gauge("patron_tags_not_shown", "Manual tags left out of patron_members_tagged; "
                                    "GetStatus lists every tag.", registry=registry)
        self.lmdb_bytes = Gauge("patron_lmdb_bytes", "Bytes of LMDB pages in use per shard.", ["shard"],
                                registry=registry)
        self.compiled_wire = Gauge("patron_compiled_wire",
                                   "1 when batches are cut and read by the compiled wire code and the engine runs "
                                   "compiled, 0 when either is missing and the slower pure code does it (alert on "
                                   "0; docs/operations.md).",
                                   registry=registry)
        self.compiled_wire.set(int(COMPILED))
        self.rules_version = Gauge("patron_rules_version", "The rules version in force.", registry=registry)
        self.vshards_owned = Gauge("patron_virtual_shards", "Virtual shards each shard owns (the layout in use).",
                                   ["shard"], registry=registry)
        self.vshards_moved = Counter("patron_virtual_shards_moved_total", "Virtual shards moved between shards.",
                                     registry=registry)
        self.vshards_to_move = Gauge("patron_virtual_shards_to_move",
                                     "Virtual shards the move or rebalance under way has still to move.",
                                     registry=registry)
        self.liability = Gauge("patron_points_liability", "Outstanding spendable points by the month they expire.",
                               ["expiry_month"], registry=registry)

    def _midnight_gauges(self, registry: CollectorRegistry) -> None:
        self.midnight_success = Gauge("patron_midnight_last_success_timestamp_seconds",
                                      "The local midnight that began the business day the last midnight run "
                                      "reached (Unix time), read from the folder at start: a run catching up "
                                      "one date of many stays as old as that date.",
                                      registry=registry)
        self.checkpoint_success = Gauge("patron_checkpoint_last_success_timestamp_seconds",
                                        "When the newest checkpoint was made (Unix time; 0: the folder has none).",
                                        registry=registry)
        self.checkpoint_failures = Counter("patron_checkpoint_failures_total",
                                           "Checkpoints that failed (their partial copy removed).", registry=registry)
        self.checkpoint_failed = Gauge("patron_checkpoint_last_failure_timestamp_seconds",
                                       "When the last checkpoint failed, while none has succeeded since (Unix time; "
                                       "0: the last one succeeded, or none failed). Read from the folder at start.",
                                       registry=registry)
        self.midnight_duration = Gauge("patron_midnight_last_duration_seconds", "How long the last midnight run took.",
                                       registry=registry)
        self.midnight_members = Gauge("patron_midnight_last_members_processed",
                                      "Members the last midnight run visited.", registry=registry)
        self.midnight_runs = Counter("patron_midnight_runs_total", "Midnight runs done (one per date).",
                                     registry=registry)
        self.recalculation_done = Gauge(
            "patron_recalculation_members_done",
            "Members re-evaluated so far after the last publish that changed tiers, tags or notices.",
            registry=registry)
        self.recalculation_planned = Gauge(
            "patron_recalculation_members_planned",
            "Members to re-evaluate after the last publish that changed tiers, tags or notices.", registry=registry)

    def _event_metrics(self, registry: CollectorRegistry) -> None:
        self.events_written = Counter("patron_events_written_total", "Events written to the shards' outboxes, by kind.",
                                      ["kind"], registry=registry)
        self.events_pruned = Counter("patron_events_pruned_total", "Events removed after the retention period.",
                                     registry=registry)
        self.events_delivered = Counter("patron_events_delivered_total", "Events sent to subscribers.",
                                        registry=registry)
        self.event_subscribers = Gauge("patron_event_subscribers", "Subscribers connected to Events.Subscribe.",
                                       registry=registry)
        self.event_lag = Gauge("patron_event_subscriber_lag_seconds",
                               "Per subscription, labelled NAME/N (the subscriber's name, the gateway's count of "
                               "subscriptions): age of the oldest event not yet sent to it (0: caught up).",
                               ["subscriber"], registry=registry)

    def _spending_metrics(self, registry: CollectorRegistry) -> None:
        self.points_redeemed = Counter("patron_points_redeemed_total",
                                       "Points spent by redeems (gifts, points as cash).", registry=registry)
        self.points_restored = Counter("patron_points_restored_total", "Points given back by refunds of redeems.",
                                       registry=registry)
        self.stored_value = Gauge("patron_stored_value_outstanding_minor",
                                  "Stored value members hold, in the currency's minor units: principal (money "
                                  "paid in) and bonus (given by recharge bonuses).", ["part"], registry=registry)
        self.coupons = {event: Counter(f"patron_coupons_{event}_total", help_text, ["coupon"], registry=registry)
                        for event, help_text in COUPON_EVENTS.items()}

    def know_coupons(self, coupon_ids: list[str]) -> None:
        """Each coupon's counters at 0 from the start (or its publish), not only from its first
        issue: a panel then shows 0, not "no data", and `increase` counts the first one."""
        for counter in self.coupons.values():
            for coupon_id in coupon_ids:
                counter.labels(coupon_id)

    def record_events(self, written: dict[str, int], pruned: int) -> None:
        for kind, count in written.items():
            self.events_written.labels(kind).inc(count)
        if pruned:
            self.events_pruned.inc(pruned)

    def record_batch(self, shard: int, stats: BatchStats) -> None:
        self._record_outcomes(stats)
        self.record_changes(stats)
        if stats.outcomes:  # the batch that carries its commit's counts (grouped batches carry none)
            self.shard_apply.labels(str(shard)).observe(stats.apply_seconds)
            self.shard_commit.labels(str(shard)).observe(stats.commit_seconds)
            self.shard_disk_write.labels(str(shard)).observe(stats.disk_write_seconds)
            self.shard_commit_size.labels(str(shard)).observe(sum(stats.outcomes.values()))

    def record_changes(self, stats: BatchStats) -> None:
        """Ledger-level counts: from batches and from midnight runs alike."""
        self.points_awarded.inc(stats.points_awarded)
        self.points_reversed.inc(stats.points_reversed)
        self.points_deducted.inc(stats.points_deducted)
        self.points_expired.inc(stats.points_expired)
        self.growth_awarded.inc(stats.growth_awarded)
        self.anomalies.inc(stats.anomalies)
        for before, afters in stats.tier_changes.items():
            for after, count in afters.items():
                self.tier_changes.labels(before, after).inc(count)
        self.points_redeemed.inc(stats.points_redeemed)
        self.points_restored.inc(stats.points_restored)
        for key, count in stats.coupons.items():
            event, coupon = key.split(" ", 1)
            self.coupons[event].labels(coupon).inc(count)

    def record_unreported(self, stats: BatchStats) -> None:
        """What a shard committed outside ingested batches (midnight runs, enrollment, operators,
        re-evaluation): its transactions (an operator's adjustment) and its changes."""
        self._record_outcomes(stats)
        self.record_changes(stats)

    def _record_outcomes(self, stats: BatchStats) -> None:
        for key, count in stats.outcomes.items():
            kind, outcome, reason = key.split(" ", 2)
            self.transactions.labels(kind, outcome, reason).inc(count)



def tags_to_show(counts: dict[str, int], computed: set[str], most: int = MOST_TAG_SERIES) -> dict[str, int]:
    """Every computed tag (the rules bound them), 0 while no member has it (a dashboard's series is
    there from the start), then the `most` manual tags with the most members, ties by name so
    that the series do not change from one scrape to the next."""
    manual = sorted((tag for tag in counts if tag not in computed), key=lambda tag: (-counts[tag], tag))
    return {**{tag: counts.get(tag, 0) for tag in sorted(computed)}, **{tag: counts[tag] for tag in manual[:most]}}
