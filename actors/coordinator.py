"""The coordinator: owns the shard actors and what they share: the data folder's layout,
the rules in force, the business day clock, midnight runs, re-evaluation and checkpoints.
Every shard call goes through that shard's lane, so jobs interleave with batches in order."""

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.batch_outcome import storage_full
from actors.batch_stats import Counted
from actors.batch_wire import COMPILED
from actors.config import ServeConfig
from actors.coupon_grants import GrantKeeper, stricter
from actors.job_errors import job_error, log_failure
from actors.lanes import Lane, ShardLanes
from actors.logs import without_colour
from actors.metrics import Metrics, tags_to_show
from actors.placement import assign_nodes, labelled_nodes, pinned_to
from actors.resharding import Resharding
from actors.routing import even_layout
from actors.shard import ShardConfig, ShardStatus
from actors.shard_actor import ShardActor
from engine.anomaly_report import AnomalyRow
from engine.calendar import date_span, iso, parse_day
from engine.errors import (
    CheckpointFailedError,
    InvalidRequestError,
    PatronError,
    PublishBusyError,
    PublishUnfinishedError,
    RulesError,
    ShardUnavailableError,
)
from engine.programme import Programme
from engine.types import Day
from engine.validation import load_rules, load_rules_file, version_problem, version_too_low
from storage.checkpoints import (
    Manifest,
    drop_partial,
    finish_checkpoint,
    last_checkpoint_failure,
    list_checkpoints,
    new_checkpoint,
    newest_checkpoint_time,
    note_checkpoint_failure,
    prune_checkpoints,
    recorded_event_floors,
    shard_copy,
)
from storage.folder import DataFolder, Layout, PublishedRules, ReusedId

__all__ = ["CheckpointMade", "Coordinator", "MidnightSummary", "merged_rows", "repeated_digests"]

log = logging.getLogger("patron.coordinator")

BATCHES_PER_JOB_SECOND = 1.2
"""While batches flow, each second a long job works in a shard is followed by this long for
batches. Above 1: what the batches' time also pays for (the gateway's and Ray's share of the two
cores, a step's start) kept ingestion at 0.48-0.49 of its rate with 1.0 once midnight got cheaper."""

MOST_FUTURE_DAYS = 3_660
"""How far past tomorrow on the programme's clock a test system's midnight may run
(allow_future): ten years, about a minute of runs on a test system with few members (a run's
time grows with its members). A probe asked for 9999-12-31 and started a run of some 16 hours
that nothing could stop."""

MIDNIGHT_RETRY_SECONDS = 10.0
"""How soon the watch finishes a midnight run a shard's death cut short (and again after each
failure): soon, because shards on different business days score dates differently, but not every
second after a failure that repeats."""


class MidnightSummary(msgspec.Struct):
    """A midnight run, as it goes and once it is over."""

    dates: list[str]
    """Finished, in order."""
    members: int = 0
    anomalies: int = 0
    seconds: float = 0.0
    until: str = ""
    date: str = ""
    """Under way, with `members_done` of its `members_total`."""
    members_done: int = 0
    members_total: int = 0
    worked: float = 0.0
    """Seconds the steps took in the slowest shard, and the pauses left for batches after them
    (`Coordinator._leave_room_for_batches`): how the run's time was shared with ingestion."""
    paused: float = 0.0
    stepped: float = 0.0
    """Seconds from each date's first step to its last answer and pause; the rest of `seconds` is
    starting, the reports and the checkpoint."""
    running: bool = True
    error: str = ""
    started: float = msgspec.field(default_factory=time.monotonic)


class CheckpointMade(msgspec.Struct):
    name: str
    bytes: int
    kept: list[str]


def other_shards(config: ServeConfig, layout: Layout) -> str:
    """Why --shards cannot start the folder of `layout`, or empty: its shards are its own."""
    if not config.shards or config.shards == layout.shards:
        return ""
    return (f"{config.data} has {layout.shards} shards; start without --shards, and add shards with patron shards "
            f"rebalance --shards N while it serves")


class Coordinator(ShardLanes):
    event_floors: dict[int, int]
    """What the last `patron restore` recorded (storage/checkpoints.py), read at start: a shard added
    again after a restore to fewer shards numbers its events past the positions its number gave."""

    def __init__(self, config: ServeConfig, metrics: Metrics | None = None,
                 on_health: Callable[[bool], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.on_health = on_health
        self.shards_up = True
        self.folder = DataFolder(config.data)
        self.data_id = self.folder.data_id()
        self.rules: PublishedRules
        self.programme: Programme
        self.layout: Layout
        self.actors: list[Any] = []
        self.keeper: Any = None
        self.keeper_name = ""
        """The grant keeper: limited coupons' inventory, handed to shards in blocks."""
        self.run = uuid.uuid4().hex
        """Names this server's actors apart from another's on the same Ray cluster."""
        self.published_hooks: list[Callable[[PublishedRules], Awaitable[None]]] = []
        """Told of each publish once every shard has it (node gateways keep the rules in force)."""
        self._released: set[str] = set()
        """Coupons whose unused blocks every shard was asked to give back (their inventory runs out)."""
        self.lanes: list[Lane] = []
        self.behind: set[int] = set()
        """Shards behind the rules in force (a publish they missed, or the last look found them
        so): the gateway sends them no batch until `_catch_up` has brought them to it."""
        self._answering: set[int] = set()
        """Shards that answered the last look."""
        self._unevaluated, self._cut_short = dict[int, int](), dict[int, int]()
        """Shards the last look found with a re-evaluation to do that nothing runs (`_catch_up`); and
        those that took a publish another shard's death cut short, with their members to re-evaluate,
        re-evaluated at the next catch-up even if the watch did not hear from them meanwhile."""
        self.publishing = False
        self.recalculating: dict[int, int] = {}
        """Members each shard re-evaluates for the last publish that changed tiers."""
        self._liability_due, self._instances = True, dict[int, str]()
        """The points liability gauge is owed: asked once a minute, and at start as soon as every shard
        answers (a shard slow to start left it empty for a minute: an outside probe). Each shard's
        process as the watch last saw it (ShardStatus.instance), to count its restarts."""
        self.midnight: MidnightSummary | None = None
        """The run in progress, or the last one."""
        self._midnight_task: asyncio.Task | None = None
        self._midnight_until: Day = 0
        self._business_days: list[Day] = []
        """Each shard's, at the last look that found them all answering."""
        self._midnight_tried = -MIDNIGHT_RETRY_SECONDS
        self._unreported: Day = 0
        """A run date whose reports failed to be written (`_reports`); 0 when none."""
        self._dates_counted = 0
        """Of the midnight run's dates, how many its count took in (`_count_midnight`)."""
        self._counts_seen: dict[int, tuple[Counted, Counted]] = {}
        """Per shard, its `Counted` at the last look and when it had opened (`_record_counts`)."""
        self._checkpoint_lock = asyncio.Lock()
        self.exclusive = asyncio.Lock()
        """Held by what must not meet a move of virtual shards: a midnight date, a publish reaching
        the shards, a checkpoint, and each move (actors/resharding.py)."""
        self.resharding = Resharding(self)
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.rules = self._rules_in_force()
        self.programme = Programme(load_rules(self.rules.text))
        self.metrics.know_coupons([coupon.id for coupon in self.programme.rules.coupons])
        start_day = self.config.start_date or self.today()
        self.layout = self._layout(start_day)
        self.event_floors = recorded_event_floors(self.folder)
        self.keeper = self._spawn_keeper()
        self._place()
        self.actors = [self._spawn(shard, start_day) for shard in range(self.layout.shards)]
        try:
            statuses = await self.status()
        except ShardUnavailableError as error:  # at a start, told at once: no half-served folder
            raise PatronError(f"cannot start: {error}") from None
        if note := start_date_ignored(self.config.start_date, [s.business_day for s in statuses]):
            log.warning(note)
        self._gauges_from_the_folder([s.business_day for s in statuses])
        if dropped := drop_partial(self.folder):
            log.warning("removed the partial copies of checkpoints a crash cut short", extra={"partial": dropped})
        self.lanes = [Lane(actor, shard, self.config.in_flight_per_shard, self.config.queue_per_shard)
                      for shard, actor in enumerate(self.actors)]
        lagging = [s.shard for s in statuses if s.rule_version != self.rules.version]
        if lagging:  # a publish was cut short: bring every shard to the version in force
            counts = await self._take_rules(lagging)
            statuses = [s for s in statuses if s.shard not in lagging] + [
                ShardStatus(s, True, 0, 0, "", self.rules.version, 0, "reevaluate" if c else "")
                for s, c in zip(lagging, counts, strict=True)]
        if any(s.job == "reevaluate" for s in statuses):
            self.publishing = True
            self.recalculating = {s.shard: s.job_total for s in statuses if s.job == "reevaluate"}
            self._background(self._reevaluate([s.shard for s in statuses if s.job == "reevaluate"]),
                             "the re-evaluation")
        await self.resharding.recover()  # a move cut short by a crash leaves a copy to delete
        self.resharding.tell_unfinished_rebalance()
        closed = await self._closed_owed()
        if closed and max(closed) < min(s.business_day for s in statuses):
            # every shard ran the date, the server's end cut its reports: the watch writes them. Shards
            # on different dates are brought to the latest first, whose run writes them (a review)
            self._unreported = parse_day(max(closed)) + 1
        if self.config.midnight == "clock":
            self._background(self._clock(), "the midnight clock")
        self._background(self._watch(), "watching the shards")

    def _gauges_from_the_folder(self, business_days: list[str]) -> None:
        """What the last run and checkpoint were, from the folder: empty until the next of each, the
        gauges kept `PatronNoMidnightRun` silent for a day after every restart (an outside probe)."""
        days = [parse_day(day) for day in business_days if day]
        if days:  # the run of a business day begins at its local midnight
            self.metrics.midnight_success.set(self.programme.calendar.midnight_ms(min(days)) / 1000)
        made = newest_checkpoint_time(self.folder)
        if made:
            self.metrics.checkpoint_success.set(made)
        self.metrics.checkpoint_failed.set(last_checkpoint_failure(self.folder))

    def today(self) -> Day:
        """The programme's local date now, by the wall clock."""
        return self.programme.calendar.day_of(int(time.time() * 1000))

    async def on_every_shard(self, method: str, *args: Any, urgent: bool = False) -> list[Any]:
        return await asyncio.gather(*(lane.send(method, *args, urgent=urgent) for lane in self.lanes))

    async def status(self) -> list[ShardStatus]:
        """Every shard's status; ShardUnavailableError while one cannot open its data (it answers,
        without a business day: a run or checkpoint would fail on its empty date, not say why)."""
        statuses = await asyncio.gather(*(actor.status.remote() for actor in self.actors))
        if down := [s.down for s in statuses if s.down]:
            raise ShardUnavailableError("; ".join(down))
        return statuses

    async def status_as_seen(self) -> list[ShardStatus]:
        """Every shard's status, one that does not answer (dead, restarting, its node gone) among
        them as not ready and why: what an operator asks for while a shard is down."""
        answers = await asyncio.gather(*(_answer(actor.status.remote()) for actor in self.actors))
        return [answer if isinstance(answer, ShardStatus) else ShardStatus(shard, False, 0, 0, "", 0, 0,
                                                                           down=_why_down(answer))
                for shard, answer in enumerate(answers)]

    async def close(self) -> list[int]:
        """Returns the shards that did not answer the close (down, or their node away)."""
        for task in list(self._tasks):
            task.cancel()
        for lane in self.lanes:
            lane.close()
        # bounded: a shard that is stopped or wedged (not dead, so Ray never fails the call) held the
        # stop forever; LMDB keeps what it last committed, which the next start opens
        closed = await asyncio.gather(*(_answer(actor.close.remote(), CLOSE_SECONDS) for actor in self.actors))
        if self.keeper is not None:  # bounded as the shards' close
            await _answer(self.keeper.close.remote(), CLOSE_SECONDS)
        return [shard for shard, answer in enumerate(closed) if isinstance(answer, BaseException)]

    # -- rules ---------------------------------------------------------------------------

    async def publish(self, text: str, count_past_spend: bool = True) -> tuple[PublishedRules, bool]:
        """Validate, keep the new version, hand it to every shard; when tier rules changed,
        re-evaluate every member in the background. Refused while that is still running."""
        if text == self.rules.text:  # sent again (its answer was lost): it is in force
            return self.rules, self.publishing
        if self.publishing or self._cut_short:  # the last one's re-evaluation is not done
            raise PublishBusyError(f"rules version {self.rules.version} is still being applied "
                                   f"(GetStatus shows its progress); publish again when it is done")
        try:
            rules = load_rules(text, new=True)
        except RulesError as error:
            # the version's problem first: past the first 50 problems it would not be told
            raise RulesError([*filter(None, [version_problem(text, self.rules.version)]), *error.problems]) from None
        if problem := version_too_low(rules.version, self.rules.version):  # read: no second parse
            raise InvalidRequestError(problem)
        programme = Programme(rules)  # before the flag: a failure here must not leave it set
        old, new = _inventories(self.programme), _inventories(programme)
        self.publishing = True
        answers: list = []
        try:
            await self.keeper.set_inventory.remote(stricter(old, new))  # while shards change over
            async with self.exclusive:
                published = self.folder.publish_rules(rules.version, text, count_past_spend)
                # in force from here, as a restart would read it from the folder
                self.rules, self.programme = published, programme
                self.metrics.know_coupons([coupon.id for coupon in programme.rules.coupons])
                answers = await asyncio.gather(*(lane.send("publish", text, count_past_spend) for lane in self.lanes),
                                               return_exceptions=True)
                missed = {shard for shard, answer in enumerate(answers) if isinstance(answer, BaseException)}
                if missed:  # batches for them wait until they take it (`_catch_up`), rather than scored under the old
                    self.behind |= missed
                    raise next(a for a in answers if isinstance(a, BaseException))
                counts, self.behind = answers, set()
        except BaseException as error:  # whatever failed, a later publish must not be refused as busy
            self.publishing = False
            if self.rules.version == rules.version and isinstance(error, Exception):
                self._released = set()
                # the shards that took it: in the progress from now, those that catch up join them (`_catch_up`)
                self.recalculating = {shard: count for shard, count in enumerate(answers)
                                      if isinstance(count, int) and count}
                self._cut_short = dict(self.recalculating)
                await self._after_publish(published, new)  # in force: the keeper's inventories too
                raise PublishUnfinishedError(
                    f"rules version {rules.version} is published and in force, but a shard did not take it yet "
                    f"({type(error).__name__}: restarting?); it is brought to it as soon as it answers "
                    f"(GetStatus shows each shard's rule_version): {error}") from error
            raise
        self._released = set()
        busy = [shard for shard, count in enumerate(counts) if count]
        log.info("rules published", extra={"version": published.version, "programme": programme.rules.programme,
                                           "reevaluating": sum(counts[shard] for shard in busy)})
        self.recalculating = {shard: counts[shard] for shard in busy}
        if busy:
            self._background(self._reevaluate(busy), "the re-evaluation")
        else:
            self.publishing = False
        await self._after_publish(published, new)
        return published, bool(busy)

    async def _after_publish(self, published: PublishedRules, inventories: dict) -> None:
        """What follows a version in force on every shard: a failure here cannot undo it, nor
        stop its re-evaluation, so it is logged rather than answered (the node gateways catch up
        with the rules when they next serve; the keeper keeps the stricter inventories meanwhile)."""
        try:
            for hook in self.published_hooks:
                await hook(published)
            await self.keeper.set_inventory.remote(inventories)
        except Exception:
            log.exception("rules version %d is in force on every shard, but what follows its publish failed",
                          published.version)

    def tag_counts(self, statuses: list[ShardStatus]) -> dict[str, int]:
        """Members per tag over every shard."""
        totals: dict[str, int] = {}
        for status in statuses:
            for tag, count in status.tags.items():
                totals[tag] = totals.get(tag, 0) + count
        return totals

    def recalculation_running(self, statuses: list[ShardStatus]) -> bool:
        """A re-evaluation is under way, or a shard still has one to do (GetStatus's `running`)."""
        return self.publishing or bool(self._cut_short) or any(s.job == "reevaluate" for s in statuses)

    def recalculation(self, statuses: list[ShardStatus]) -> tuple[int, int]:
        """(members done, members in all) of the last re-evaluation; a shard that finished
        its part counts as done."""
        done = sum(s.job_done if s.job == "reevaluate" else self.recalculating.get(s.shard, 0)
                   for s in statuses if s.shard in self.recalculating)
        return done, sum(self.recalculating.values())

    async def _reevaluate(self, shards: list[int]) -> None:
        try:
            while shards:
                answers = await self._step("reevaluate_step", shards)
                shards = [s for s, (_, finished, _) in zip(shards, answers, strict=True) if not finished]
        finally:
            self.publishing = False

    async def _step(self, method: str, shards: list[int], summary: MidnightSummary | None = None) -> list[tuple]:
        """One step of a long job on each shard, ahead of queued batches, then room for batches.
        Every step answers with the seconds it worked in the shard last."""
        started = time.monotonic()
        answers = await asyncio.gather(*(self.lanes[s].send(method, self.config.job_chunk, urgent=True)
                                         for s in shards))
        worked = max(a[-1] for a in answers)
        paused = await self._leave_room_for_batches(time.monotonic() - started, worked)
        if summary is not None:
            summary.worked += worked
            summary.paused += paused
        return answers

    async def _leave_room_for_batches(self, waited: float, worked: float) -> float:
        """A long job takes under half of a shard's time while batches are flowing: a step that
        `worked` seconds in the shard is followed by BATCHES_PER_JOB_SECOND times as long for
        batches. The batches it waited behind count (`waited` is from sending to the answer);
        with no batches the job runs flat out. Returns the seconds paused."""
        if any(lane.waiting or lane.in_flight for lane in self.lanes):
            pause = max(0.0, (1 + BATCHES_PER_JOB_SECOND) * worked - waited)
            await asyncio.sleep(pause)
            return pause
        return 0.0

    # -- midnight ------------------------------------------------------------------------

    async def run_midnight(self, until: Day, allow_future: bool = False) -> MidnightSummary:
        """Start or join the run up to `until` and wait for its end. A caller that goes away
        leaves the run going."""
        return await asyncio.shield(self.start_midnight(until, allow_future))

    def start_midnight(self, until: Day, allow_future: bool = False) -> asyncio.Task:
        """Run every midnight from the day after the business day up to the one that starts
        `until`, in date order, then checkpoint; dates already run are not run again. A run in
        progress is joined (and goes on to `until`). A date after tomorrow on the programme's
        clock would expire points and end tiers early: refused unless `allow_future` (test systems)."""
        tomorrow = self.today() + 1
        if until > tomorrow and not allow_future:
            raise InvalidRequestError(
                f"date: {iso(until)} is after tomorrow ({iso(tomorrow)}) on the programme's clock "
                f"({self.programme.calendar.zone}); running it now would expire points and end tiers ahead "
                f"of time. On a test system, allow it with allow_future (patron midnight --allow-future)")
        if until > tomorrow + MOST_FUTURE_DAYS:
            raise InvalidRequestError(
                f"date: {iso(until)} is more than {MOST_FUTURE_DAYS:,} days after tomorrow ({iso(tomorrow)}) on the "
                f"programme's clock; even with allow_future a test system runs at most that far ahead (each date "
                f"is a whole midnight run, and a run cannot be stopped)")
        if self._midnight_running():
            self._midnight_until = max(self._midnight_until, until)
            return self._midnight_task
        self._midnight_until = until
        if self.midnight is not None and self.midnight.error:
            # a run a failure cut short goes on: the dates it finished are counted at its end, with
            # the rest (a fresh summary forgot them, and the metric never counted them)
            self.midnight.running, self.midnight.error, self.midnight.until = True, "", iso(until)
            self.midnight.started = time.monotonic() - self.midnight.seconds  # its time, not the pause between
        else:
            self.midnight, self._dates_counted = MidnightSummary([], until=iso(until)), 0
        self._midnight_task = self._background(self._midnight(self.midnight), "the midnight run")
        return self._midnight_task

    async def _midnight(self, summary: MidnightSummary) -> MidnightSummary:
        try:
            if self._unreported:  # the run before stopped after every shard ran this date, before its reports
                await self._reports(set(), self._unreported)
            run = min(parse_day(s.business_day) for s in await self.status()) + 1
            if run > self._midnight_until and len(summary.dates) > self._dates_counted:
                started = time.monotonic()  # only a cut run's reports were left: now its end
                self._count_midnight(summary)
                await _checkpointed(self.checkpoint(), started)
            first = run
            while run <= self._midnight_until:  # nothing is awaited between the last check and the end
                summary.until = iso(self._midnight_until)
                days = await self._run_one_after_reevaluation(run, summary, first=run == first)
                if run < self._midnight_until:
                    await self._reports(days, run)
                    run += 1
                    continue
                started = time.monotonic()  # the last date asked for: the checkpoint copies beside its reports
                copying = asyncio.ensure_future(self.checkpoint())
                try:
                    await self._reports(days, run)
                except BaseException:
                    await asyncio.gather(copying, return_exceptions=True)  # not left running unawaited
                    raise
                run += 1
                self._count_midnight(summary)
                await _checkpointed(copying, started)
        except Exception as error:
            summary.error = (f"{job_error(error)}; shards it left short of its date are brought to it once every "
                             f"shard answers (`patron status` follows it)")
            if storage_full(error):  # at night no batch comes to count it: PatronStorageFull was silent (a probe)
                self.metrics.storage_full.inc()
            raise
        finally:
            summary.running, summary.date = False, ""
            summary.seconds = time.monotonic() - summary.started
        return summary

    async def _run_one_after_reevaluation(self, run: Day, summary: MidnightSummary, first: bool = True) -> set[str]:
        """A shard has one long job at a time: a midnight run begun during a publish's
        re-evaluation replaced it, and the members not yet visited kept their tiers until a
        restart. So the run waits for it (ingestion goes on meanwhile)."""
        while True:
            while self.publishing:
                await asyncio.sleep(0.1)
            async with self.exclusive:
                if not self.publishing:  # else a publish took the lock first: its re-evaluation goes first
                    await self.resharding.recover()  # a failed move's second copy is not run twice
                    return await self._run_one(run, summary, first)

    async def _run_one(self, run: Day, summary: MidnightSummary, first: bool = True) -> set[str]:
        counts = await self.on_every_shard("midnight_begin", run, first, urgent=True)
        summary.date, summary.members_done, summary.members_total = iso(run), 0, sum(counts)
        shards, days = list(range(len(self.lanes))), []
        started = time.monotonic()
        while shards:
            answers = await self._step("midnight_step", shards, summary)
            visited = sum(a[0] for a in answers)
            summary.members_done += visited
            summary.members += visited
            days += [day for a in answers for day in a[1]]
            shards = [s for s, answer in zip(shards, answers, strict=True) if not answer[2]]
        summary.stepped += time.monotonic() - started
        summary.dates.append(iso(run))
        summary.anomalies += len(days)
        return set(days)

    async def _reports(self, days: set[str], run: Day) -> None:
        """After the run for `run`: the anomaly reports of the days its rows came from, those of
        earlier rows whose run was cut short before its reports (the shards keep their days), and
        the closed day's reused ids. They read the shards, so a checkpoint may copy beside them;
        then the shards forget the days reported (a small write, through their lanes). When this
        fails after every shard has run the date, the watch tries it again (`_finish_midnight`)."""
        self._unreported = run
        owed = await asyncio.gather(*(actor.reports_owed.remote() for actor in self.actors))
        days = days | {day for part in owed for day in part}
        closed = {iso(run - 1)} | await self._closed_owed()
        await self._write_reports(days | closed)  # a closed day's even when empty: "none", not "not run"
        for day in sorted(closed):
            await self._report_reused_ids(parse_day(day))
        await self.on_every_shard("reports_written", sorted(days), sorted(closed), urgent=True)
        self._unreported = 0

    async def _closed_owed(self) -> set[str]:
        """Days closed by runs whose reports a cut of the server left unwritten (the shards keep them)."""
        owed = await asyncio.gather(*(actor.closed_owed.remote() for actor in self.actors))
        return {day for part in owed for day in part}

    async def _write_reports(self, days: set[str]) -> None:
        for day in sorted(days):
            self.folder.write_report(day, await self.anomaly_report(day))

    async def _report_reused_ids(self, day: Day) -> None:
        """Transaction ids of the closed day used by more than one member, written beside the
        anomaly report: each was applied once per member (docs/rules.md), which a till that reuses its
        ids did not mean. Shards first send 8-byte digests of their ids, one per member; only ids
        whose digest comes twice (from two shards, or twice from one) are then asked for by name,
        and a day without any asks for none (a pass over a million ids a shard saved)."""
        shared = repeated_digests(await asyncio.gather(*(actor.id_digests.remote(day) for actor in self.actors)))
        if not shared:
            return
        parts = await asyncio.gather(*(actor.members_by_id.remote(day, frozenset(shared)) for actor in self.actors))
        members: dict[str, set[str]] = {}
        for part in parts:
            for txn_id, found in part.items():
                members.setdefault(txn_id, set()).update(found)
        rows = [ReusedId(txn_id, sorted(found)) for txn_id, found in sorted(members.items()) if len(found) > 1]
        if rows:
            path = self.folder.write_reused_ids(iso(day), rows)
            log.warning("transaction ids used by more than one member", extra={"day": iso(day), "ids": len(rows),
                                                                            "report": str(path)})

    async def anomaly_report(self, day: str) -> list[AnomalyRow]:
        return merged_rows(await asyncio.gather(*(actor.anomalies.remote(day) for actor in self.actors)))

    async def _clock(self) -> None:
        """Run each local midnight when it comes, and at start every one that was missed. Only
        when one is due: GetStatus keeps showing the last run, not a minute's empty one."""
        while True:
            try:
                if min(parse_day(s.business_day) for s in await self.status()) < self.today():
                    await self.run_midnight(self.today())
            except Exception as error:
                task = self._midnight_task  # a run's own failure is logged by its task (`_finished`)
                if task is None or not task.done() or task.cancelled() or task.exception() is not error:
                    log_failure(log, "the midnight run failed; it is tried again in a minute", error)
            await asyncio.sleep(60)

    def _count_midnight(self, summary: MidnightSummary) -> None:
        """The run's dates not counted yet: those since the last count."""
        dates = len(summary.dates) - self._dates_counted
        self._dates_counted = len(summary.dates)
        summary.seconds = time.monotonic() - summary.started
        metrics = self.metrics
        if summary.dates:  # the midnight that began the date reached, as at start: a run of one date of
            # weeks behind set it to now, silencing PatronNoMidnightRun (an outside probe)
            metrics.midnight_success.set(self.programme.calendar.midnight_ms(parse_day(summary.dates[-1])) / 1000)
        metrics.midnight_duration.set(summary.seconds)
        metrics.midnight_members.set(summary.members)
        metrics.midnight_runs.inc(dates)
        log.info("midnight run", extra={"dates": date_span(summary.dates), "members": summary.members,
                                        "anomalies": summary.anomalies, "seconds": summary.seconds,
                                        "worked": summary.worked, "paused": summary.paused,
                                        "stepped": summary.stepped})

    # -- watching ------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Every few seconds: is every shard answering (health follows), and the gauges."""
        rounds = 0
        while True:
            try:
                self._liability_due |= rounds % 60 == 0
                await self._observe()
            except Exception:
                log.exception("watching the shards failed")
            try:
                await self._catch_up()
            except Exception:  # a shard that does not answer yet is tried again next second
                log.warning("a shard behind the rules in force did not take them yet", exc_info=True)
            try:
                await self._finish_midnight()
            except Exception:
                log.warning("finishing a midnight run cut short failed; tried again soon", exc_info=True)
            try:
                await self.resharding.recover_when_answering(self._answering)
            except Exception:
                log.warning("deleting a moved virtual shard's other copy failed; tried again soon", exc_info=True)
            rounds += 1
            await asyncio.sleep(1.0)

    async def _catch_up(self) -> None:
        """A shard behind the version in force (a publish its restart cut short) is brought to
        it, as at start; re-evaluation follows where the tiers changed."""
        # only shards that answer: a call to one that is down would wait for it, holding the lock
        behind = sorted(self.behind & self._answering)
        if self.publishing or not (behind or self._unevaluated or self._cut_short):
            return
        # took a publish whose re-evaluation did not start: as the watch saw them, and those a publish
        # cut short (the watch may not have heard from one in time on a loaded machine: CI found
        # its members left unevaluated while GetStatus said the re-evaluation had ended)
        cut = {shard: count for shard, count in self._cut_short.items() if shard in self._answering}
        busy = {**self._unevaluated, **cut}  # one that died since is stepped once it answers
        self._unevaluated, self._cut_short = {}, {s: c for s, c in self._cut_short.items() if s not in cut}
        self.publishing = True  # as a publish: no other publish, and moves wait, until it is done
        try:
            if behind:
                async with self.exclusive:
                    counts = await self._take_rules(behind)
                self.behind -= set(behind)
                if self.resharding.others is not None:  # node gateways send them batches again
                    await self.resharding.others.route()
                log.info("rules version in force taken by shards that were behind",
                         extra={"version": self.rules.version, "shards": behind})
                busy.update({shard: count for shard, count in zip(behind, counts, strict=True) if count})
        except BaseException:
            self.publishing = False
            self._cut_short.update(cut)
            raise
        if busy:
            # the version's other shards stay in the progress: it went back to these shards' part alone
            self.recalculating = {**self.recalculating, **busy}
            log.info("re-evaluating the members of shards a restart cut short", extra={
                "version": self.rules.version, "shards": sorted(busy), "members": sum(busy.values())})
            self._background(self._reevaluate(sorted(busy)), "the re-evaluation")
        else:
            self.publishing = False

    async def _finish_midnight(self) -> None:
        """A midnight run cut short (a shard died in it, or the server) left shards on different
        business days, or short of the date asked for; without this only the next run asked for
        (or the clock's) would finish it. Dates a shard already ran are skipped."""
        if self._business_days == [] or not self.shards_up or self._midnight_running() or (
                time.monotonic() < self._midnight_tried + MIDNIGHT_RETRY_SECONDS):
            return
        if not self._owed(self._business_days):
            if self._unreported:  # every shard ran the date, and its reports (and the run's end) are left
                self._midnight_tried = time.monotonic()
                # the line operations.md tells operators to look for, here too (a checkpoint probe)
                log.warning("finishing a midnight run that was cut short", extra={
                    "until": iso(self._unreported), "left": "its anomaly reports and end",
                    "error": self.midnight.error if self.midnight is not None else ""})
                self.start_midnight(self._unreported, allow_future=True)
            return
        # the last look's may predate a run's end; a shard gone again meanwhile must not hold the watch
        answers = await asyncio.gather(*(_answer(actor.status.remote()) for actor in self.actors))
        if not all(isinstance(answer, ShardStatus) and answer.business_day for answer in answers):
            return
        days = [parse_day(answer.business_day) for answer in answers]
        until = self._owed(days)
        if self._midnight_running() or not until:
            return
        self._midnight_tried = time.monotonic()
        log.warning("finishing a midnight run that was cut short", extra={
            "until": iso(until), "business_days": sorted({iso(day) for day in days}),
            "error": self.midnight.error if self.midnight is not None else ""})
        self.start_midnight(until, allow_future=True)  # each date was asked for before

    def _owed(self, days: list[Day]) -> Day:
        """The date a cut run still owes shards on these business days (0: none): the latest of
        them, or the date a failed run was asked for."""
        failed = self.midnight is not None and self.midnight.error
        until = max(*days, self._midnight_until if failed else 0)
        return until if min(days) < until else 0

    def _record_counts(self, shard: int, now: Counted, at_open: Counted) -> None:
        """What a shard's commits added since the last look, a restart of the shard between
        included; since it opened, the first time, or when a restart found less than was seen
        (commits a relaxed sync lost to a power cut: another history from there)."""
        seen = self._counts_seen.get(shard)
        before = at_open
        if seen is not None and (seen[1] == at_open or seen[0].commits <= at_open.commits):
            before = seen[0]  # the same opening, or one that holds everything seen
        self._counts_seen[shard] = (now, at_open)
        if now.commits == before.commits:
            return
        added = now.since(before)
        try:
            self.metrics.record_unreported(added.stats)
            self.metrics.record_events(added.events, added.pruned)
        except ValueError:  # a count that went down: not a history that follows the one seen
            log.warning("a shard's counts went back; they are counted from here", extra={"shard": shard})

    def _midnight_running(self) -> bool:
        return self._midnight_task is not None and not self._midnight_task.done()

    async def _take_rules(self, shards: list[int]) -> list[int]:
        """The version in force sent to these shards, as its publish sent it; how many members
        each will re-evaluate."""
        rules = self.rules
        return await asyncio.gather(*(self.lanes[s].send("publish", rules.text, rules.count_past_spend)
                                      for s in shards))

    async def _observe(self) -> None:
        metrics = self.metrics
        answers = await self.status_as_seen()  # one that does not answer is there, not ready
        up = all(a.ready for a in answers)
        self._answering = {shard for shard, answer in enumerate(answers) if answer.ready}
        if not self.publishing:  # during a publish shards change over one by one
            self.behind |= {shard for shard, answer in enumerate(answers)
                            if answer.ready and answer.rule_version < self.rules.version}
        self._unevaluated = {answer.shard: answer.job_total for answer in answers
                             if answer.ready and answer.job == "reevaluate"}
        for shard, answer in enumerate(answers):
            metrics.shard_up.labels(str(shard)).set(1 if answer.ready else 0)
            self._count_restart(shard, answer)
            if answer.ready:
                metrics.members.labels(str(shard)).set(answer.members)
                metrics.members_in_memory.labels(str(shard)).set(answer.members_in_memory)
                metrics.member_loads.labels(str(shard)).set(answer.member_loads)
                metrics.mapping_drops.labels(str(shard)).set(answer.mapping_drops)
                metrics.lmdb_bytes.labels(str(shard)).set(answer.disk_bytes)
        # 0 when this process or any shard's runs without the compiled wire code or engine (a shard's
        # process may import another install than the gateway's)
        metrics.compiled_wire.set(int(COMPILED and all(
            a.compiled_wire for a in answers if a.ready)))
        metrics.rules_version.set(self.rules.version)
        self._observe_layout()
        if up:
            self._note_opened(len(answers))
            metrics.members_tagged.clear()
            counts = self.tag_counts(answers)
            shown = tags_to_show(counts, {tag.name for tag in self.programme.rules.tags})
            for tag, count in shown.items():
                metrics.members_tagged.labels(tag).set(count)
            metrics.tags_not_shown.set(sum(1 for tag in counts if tag not in shown))
            self._business_days = [parse_day(a.business_day) for a in answers if a.business_day]
            done, total = self.recalculation(answers)
            metrics.recalculation_done.set(done)
            metrics.recalculation_planned.set(total)
            metrics.stored_value.labels("principal").set(sum(a.stored_value for a in answers))
            metrics.stored_value.labels("bonus").set(sum(a.bonus_value for a in answers))
        # every shard that answers, also while another is down: each is seen as soon as it opens
        shards = sorted(self._answering)
        counts = await asyncio.gather(*(_answer(self.actors[shard].counts.remote()) for shard in shards))
        for shard, answer in zip(shards, counts, strict=True):
            if isinstance(answer, tuple):
                self._record_counts(shard, *answer)
        if up and self._liability_due:  # once a minute (a walk of every member's lots), first once all answer
            self._liability_due = False
            parts = await asyncio.gather(*(_answer(a.liability.remote()) for a in self.actors))
            if all(isinstance(part, dict) for part in parts):
                totals: dict[str, int] = {}
                for part in parts:
                    for month, points in part.items():
                        totals[month] = totals.get(month, 0) + points
                metrics.liability.clear()
                for month, points in totals.items():
                    metrics.liability.labels(month).set(points)
        if up != self.shards_up:
            log.warning("every shard answers" if up else "a shard does not answer; health is NOT_SERVING",
                        extra={"shards": [s for s, a in enumerate(answers) if not a.ready]})
        self.shards_up = up
        if self.on_health is not None:
            await self.on_health(up)
        if up:
            await self._release_running_out()

    def _note_opened(self, shards: int) -> None:
        """Shards 0 to `shards` - 1 answered, each from its LMDB: a start that finds one's data
        missing refuses to make it anew (Layout.opened)."""
        if self.layout.opened < shards:
            self.layout = msgspec.structs.replace(self.layout, opened=shards)
            self.folder.save_layout(self.layout)

    def _count_restart(self, shard: int, answer: ShardStatus) -> None:
        """A shard crashing every few seconds is seldom seen down, never for PatronShardDown's
        minute (an outside probe): its new process is counted instead."""
        restarts = self.metrics.shard_restarts.labels(str(shard))  # at 0 from the start, for increase()
        if answer.ready and answer.instance:
            if self._instances.get(shard, answer.instance) != answer.instance:
                restarts.inc()
                log.warning("a shard's process started again", extra={"shard": shard})
            self._instances[shard] = answer.instance

    def _observe_layout(self) -> None:
        owned = [0] * self.layout.shards
        for owner in self.layout.owners:
            owned[owner] += 1
        for shard, count in enumerate(owned):
            self.metrics.vshards_owned.labels(str(shard)).set(count)
        progress = self.resharding.progress
        self.metrics.vshards_to_move.set(progress.planned - progress.done if progress and progress.running else 0)

    async def _release_running_out(self) -> None:
        """When a coupon's inventory runs out, units idle in shards' blocks go back to the keeper
        for the shards that still issue it (docs/decisions.md): once per coupon and publish."""
        running_out = await self.keeper.tails.remote() - self._released
        if running_out:
            coupons = sorted(running_out)
            await self.on_every_shard("release_coupons", coupons, urgent=True)
            self._released |= running_out

    # -- checkpoints ---------------------------------------------------------------------

    async def checkpoint(self) -> CheckpointMade:
        """Every shard copies its last commit, at its own place in its stream of batches (members
        live in one shard each, so each copy is whole), beside the batches that follow: a copy
        takes seconds at a million members; layout and rules are copied alongside."""
        async with self._checkpoint_lock, self.exclusive:
            try:  # a shard that cannot open its data fails it, counted as any failure
                await self.resharding.recover()  # never two copies in a checkpoint (a cluster probe)
                statuses = await self.status()
            except Exception as error:
                self._checkpoint_failed(error)
                raise
            business = min(s.business_day for s in statuses)
            try:
                name, partial = new_checkpoint(self.folder, business)  # its folder may not fit either
                sizes = await asyncio.gather(*(lane.read("checkpoint", str(shard_copy(partial, shard)))
                                               for shard, lane in enumerate(self.lanes)), return_exceptions=True)
                failed = [size for size in sizes if isinstance(size, BaseException)]
                if failed:  # every copy ended first: none writes into the folder removed below
                    raise failed[0]
                manifest = Manifest(name, datetime.now(UTC).isoformat(timespec="seconds"), business,
                                    self.rules.version, len(self.lanes), sum(sizes))
                finish_checkpoint(self.folder, name, partial, manifest)
            except Exception as error:  # not a cancellation: the server stopping leaves it for the next start
                drop_partial(self.folder)
                self._checkpoint_failed(error)
                if storage_full(error):
                    self.metrics.storage_full.inc()
                    raise
                raise CheckpointFailedError(f"the checkpoint failed and nothing of it was kept ({job_error(error)}); "
                                            f"take another once every shard answers (patron status)") from error
            self.metrics.checkpoint_success.set(time.time())
            self.metrics.checkpoint_failed.set(0)
            return CheckpointMade(name, manifest.bytes, self._pruned())

    def _pruned(self) -> list[str]:
        """The checkpoints kept once the oldest are removed; the new one succeeded whatever this does."""
        try:
            return prune_checkpoints(self.folder, self.config.checkpoints_kept)
        except OSError:
            log.warning("old checkpoints could not be removed; tried again after the next one", exc_info=True)
            return list_checkpoints(self.folder)

    def _checkpoint_failed(self, error: BaseException) -> None:
        self.metrics.checkpoint_failures.inc()
        # in words: a shard's failure came as Ray's wrapper, its traceback in colour (an outside probe)
        self.metrics.checkpoint_failed.set(note_checkpoint_failure(self.folder, job_error(error)))

    # -- start-up ------------------------------------------------------------------------

    def _background(self, coroutine: Any, name: str) -> asyncio.Task:
        """`name` says which job failed in the log: "the midnight run failed" is what a runbook greps."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a run nobody waits for still says why
            log_failure(log, f"{task.get_name()} failed", task.exception())

    def _rules_in_force(self) -> PublishedRules:
        current = self.folder.current_rules()
        if self.config.rules is None:
            if current is None:
                raise PatronError(f"{self.config.data} has no rules yet: start with --rules FILE")
            return current
        rules = load_rules_file(self.config.rules, over=current.version if current else 0)
        if current is None or rules.version > current.version:
            log.info("rules published at start", extra={"version": rules.version, "programme": rules.programme,
                                                        "file": str(self.config.rules),
                                                        "before": current.version if current else 0})
            return self.folder.publish_rules(rules.version, self.config.rules.read_text(encoding="utf-8"))
        if rules.version < current.version:
            log.warning("%s is version %d; the data folder has version %d in force and keeps it",
                        self.config.rules, rules.version, current.version)
        elif self.config.rules.read_text(encoding="utf-8") != current.text:  # an edit that kept its version
            log.warning("%s is version %d as the version in force, but its text differs: it was not published, "
                        "the version in force stays; give it a higher version to publish it",
                        self.config.rules, rules.version)
        return current

    def _layout(self, start_day: Day) -> Layout:
        layout = self.folder.layout()
        wanted = self.config.shards
        if layout is None:
            layout = even_layout(wanted or os.cpu_count() or 1)
            layout.first_day = start_day
            self.folder.save_layout(layout)
        elif problem := other_shards(self.config, layout):
            raise PatronError(problem)
        elif layout.first_day and not layout.opened and layout.first_day != start_day:
            # a first start that failed before any shard opened: the folder begins with this one (a reviewer)
            layout = msgspec.structs.replace(layout, first_day=start_day)
            self.folder.save_layout(layout)
        return layout

    def _spawn_keeper(self) -> Any:
        """On the coordinator's node, where the data folder's `stock` lives; named, so shards
        find it, and uniquely, so servers sharing a Ray cluster do not meet."""
        node = ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)
        self.keeper_name = f"patron-grants-{self.run}"
        return GrantKeeper.options(name=self.keeper_name, num_cpus=0, scheduling_strategy=strategy).remote(
            str(self.folder.stock), self.layout.shards, _inventories(self.programme))

    def _spawn(self, shard: int, start_day: Day) -> Any:
        config = ShardConfig(shard, str(self.folder.shard(shard)), self.rules.text, self.config.durability,
                             start_day, self.config.index_retention_days, self.config.map_bytes,
                             self.config.max_map_bytes, self.config.coupon_block, self.keeper_name,
                             hot_members=self.config.hot_members,
                             mapped_budget=self.config.mapped_budget_mib << 20,
                             expect_data=shard < self.layout.opened,
                             event_floor=self.event_floors.get(shard, 0))
        if not self.config.ray_address:  # one machine: every shard fits, however many cores
            return ShardActor.options(num_cpus=0).remote(config)
        # on its named node, which keeps its LMDB; a core is not reserved (as on one machine); named,
        # so node gateways find it
        return ShardActor.options(num_cpus=0, name=self.shard_name(shard),
                                  **pinned_to(self.layout.nodes[str(shard)])).remote(config, self.layout.folder_id)

    def set_owner(self, vshard: int, shard: int) -> None:
        """The layout with a virtual shard's new owner: on disk first, then in use, and in the
        metrics at once (the status watch's next turn, a second later, was after a scrape that
        followed a rebalance's end: it read the counts from before)."""
        owners = list(self.layout.owners)
        owners[vshard] = shard
        layout = msgspec.structs.replace(self.layout, owners=owners)
        self.folder.save_layout(layout)
        self.layout = layout
        self._observe_layout()

    def set_shards(self, shards: int) -> None:
        """More shards, owning nothing yet (on a cluster, each named a node)."""
        layout = msgspec.structs.replace(self.layout, shards=shards,
                                         first_shards=self.layout.first_shards or self.layout.shards)
        self.folder.save_layout(layout)
        self.layout = layout
        self._place()
        self._observe_layout()

    def shard_name(self, shard: int) -> str:
        return f"patron-shard-{self.run}-{shard}"

    def _place(self) -> None:
        """On a cluster, name each shard's node before its first start, and remember it: a
        restart (of the shard, of its node, of patron) finds its data again."""
        if not self.config.ray_address:
            return
        live = labelled_nodes()
        nodes = assign_nodes(self.layout.shards, self.layout.nodes, live)
        if away := sorted({name for name in nodes.values() if name not in live}):
            log.warning("shards wait for their nodes to join the cluster (start each with ray start --labels "
                        "patron-node=NAME and its PATRON_NODE_DATA)", extra={"nodes": away})
        if nodes != self.layout.nodes or not self.layout.folder_id:
            self.layout.nodes = nodes
            self.layout.folder_id = self.layout.folder_id or uuid.uuid4().hex
            self.folder.save_layout(self.layout)


def _inventories(programme: Programme) -> dict[str, int]:
    """The limited coupons of a programme: id -> inventory."""
    return {coupon.id: coupon.inventory for coupon in programme.rules.coupons if coupon.inventory}


async def _checkpointed(copying: Awaitable[CheckpointMade], started: float) -> None:
    """The checkpoint after a midnight run, logged. Its failure (a full disk) is logged and
    counted, not the run's: the run is done, and reported as failed it was resumed by the next
    one, its error telling of shards left short of their date (an outside probe). The watch's
    alert is `patron_checkpoint_last_success_timestamp_seconds` growing old."""
    try:
        made = await copying
    except Exception as error:
        log.error("the checkpoint after the midnight run failed; the run itself is done. Free space on the "
                  "data folder's disk and take one with `patron checkpoint`", extra={"error": job_error(error)})
        return
    log.info("checkpoint after the midnight run", extra={
        "checkpoint": made.name, "bytes": made.bytes, "seconds": time.monotonic() - started})


def start_date_ignored(start_date: Day, business_days: list[str]) -> str:
    """What to say when `--start-date` names another day than a data folder already has: it sets
    the business day of a new folder only, and was passed over without a word (an outside probe)."""
    kept = sorted({day for day in business_days if day and parse_day(day) != start_date})
    if not start_date or not kept:
        return ""
    return (f"--start-date {iso(start_date)} is for a new data folder only: this one is on business day "
            f"{kept[-1]} (midnight runs move it)")


def merged_rows(parts: list[list[AnomalyRow]]) -> list[AnomalyRow]:
    """One day's anomaly rows from every shard, by member, each member once: while a virtual shard
    moves, its rows are on both shards for a moment (copied, then let go), the same row twice."""
    rows = {row.member_id: row for part in parts for row in part}
    return [rows[member_id] for member_id in sorted(rows)]


ANSWER_SECONDS = 5.0
"""How long the watch and GetStatus wait for a shard's status before counting it down."""
CLOSE_SECONDS = 20.0
"""How long a stop waits for each shard to close its LMDB: closing takes milliseconds, after the
work it was given (batches in flight finish before; a midnight step may still be under way)."""


async def _answer(call: Any, timeout: float = ANSWER_SECONDS) -> Any:
    """The shard's answer, or the error (a shard restarting may not answer in time)."""
    try:
        return await asyncio.wait_for(call, timeout)
    except Exception as error:
        return error


def _why_down(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"it did not answer within {ANSWER_SECONDS:g} s (restarting, or too busy)"
    first = (without_colour(str(error)).strip().splitlines() or [""])[0]  # Ray colours its errors
    return f"{type(error).__name__}: {first[:300]}" if first else type(error).__name__


def repeated_digests(blobs: list[bytes]) -> set[bytes]:
    """The 8-byte digests that come more than once in the shards' sorted lists (`id_digests`),
    within one or across them."""
    seen: set[bytes] = set()
    shared: set[bytes] = set()
    for blob in blobs:
        listed = [blob[i:i + 8] for i in range(0, len(blob), 8)]
        digests = set(listed)
        if len(digests) < len(listed):  # sorted: a digest that comes twice here is next to itself
            shared.update(a for a, b in itertools.pairwise(listed) if a == b)
        shared |= digests & seen
        seen |= digests
    return shared
