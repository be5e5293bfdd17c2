"""`patron bench SCENARIO`: measure the engine end to end and write DIR/SCENARIO.json and a PNG chart."""

import argparse
import importlib

from cli.inputs import path

__all__ = ["SCENARIOS", "add_parser", "spending_option"]

SCENARIOS = {
    "ingest": ("bench.ingest", "closed-loop ingestion by several client processes: transactions/s over time"),
    "latency": ("bench.latency", "open loop at --rate: p50/p95/p99 batch acknowledgement latency"),
    "core": ("bench.core", "replay speed per core, and end-to-end ÷ (cores × core speed)"),
    "midnight": ("bench.midnight", "the midnight job over --members members while ingesting"),
    "recovery": ("bench.recovery", "kill -9 while ingesting: seconds to SERVING, nothing acknowledged lost"),
    "import": ("bench.opening_import", "patron import of --members members with opening balances: members/s, "
                                       "CPU per member"),
    "enroll": ("bench.bulk_import", "bulk enrollment of --members members by concurrent EnrollBatch calls"),
    "crash": ("bench.crash", "kill -9 of the server and of shard actors while streaming (20 kills): equal to replay"),
    "overload": ("bench.overload", "more SubmitBatch calls in flight than the shards queue: how soon refusals come"),
    "soak": ("bench.soak", "open loop at 70% of the sustained rate for 10 minutes: memory and p99 stay flat"),
    "spending": ("bench.spending", "replay and end to end on a stream a fifth spending (--spending): its own rates"),
    "events": ("bench.events", "one subscriber process reading --members members' upgrade events: events/s"),
    "quote": ("bench.quote", "Wallet.Quote back to back while ingesting open loop at --rate: quote latency"),
    "scaling": ("bench.scaling", "a local two-node Ray cluster: 1, 2, 4 shards and 1, 2 gateways, ratios and per core"),
    "members": ("bench.members", "N members enrolled, Zipf streams with a hot set and with every member in memory: "
                                 "RSS, throughput, recovery, bytes per member"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.settings import DEFAULT_OUT, EXAMPLE_RULES

    listing = "; ".join(f"{name}: {text}" for name, (_, text) in SCENARIOS.items())
    bench = commands.add_parser("bench", help="benchmark scenarios (JSON and PNG into --out)",
                                description=f"Scenarios: {listing}.")
    bench.add_argument("scenario", choices=tuple(SCENARIOS))
    bench.add_argument("--out", type=path, default=DEFAULT_OUT, help="where SCENARIO.json and SCENARIO.png go")
    bench.add_argument("--quick", action="store_true", help="small sizes: about a minute")
    bench.add_argument("--rules", type=path, default=EXAMPLE_RULES)
    bench.add_argument("--shards", type=int, default=0, help="0: one per CPU")
    bench.add_argument("--durability", choices=("strict", "relaxed"), default="strict")
    bench.add_argument("--clients", type=int, default=2, help="client processes")
    bench.add_argument("--batch-size", type=int, default=0, help="transactions per batch (0: the scenario's)")
    bench.add_argument("--window", type=int, default=8,
                       help="closed loop: unanswered batches per client (overload: 100 unless given)")
    bench.add_argument("--transactions", type=int, default=0, help="ingest, core, recovery: stream length")
    bench.add_argument("--members", type=int, default=0,
                       help="midnight, import, enroll: members to load, import or enroll; "
                            "ingest, core: the stream's members")
    bench.add_argument("--rate", type=float, default=0,
                       help="latency: offered transactions/s (100,000); soak: default 70%% of the sustained rate")
    bench.add_argument("--seconds", type=float, default=0, help="latency, soak, overload: how long the schedule runs")
    bench.add_argument("--kills", type=int, default=0, help="crash: how many kills (20; quick: 4)")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--start-date", default="2026-11-17", help="the business day the data folder starts on")
    bench.add_argument("--work", type=path, help="where scratch data folders go (default: the system's temp)")
    bench.add_argument("--subscriber", action="store_true",
                       help="ingest: a subscriber process follows Events.Subscribe during the run")
    bench.add_argument("--spending", type=spending_option, default=0.0,
                       help="ingest, core: share of spending transactions in the stream (spending: 0.2 unless given)")
    bench.add_argument("--hot-members", type=int, default=0,
                       help="members: the hot set per shard (default a tenth of --members over the shards); "
                            "midnight: the hot set per shard (default: every member in memory)")
    bench.add_argument("--keep-data", action="store_true", help="keep the scratch folder (its path is printed)")
    bench.set_defaults(run=_run)


def spending_option(text: str) -> float:
    """--spending, checked where it is read: bench.workload's range."""
    from bench.workload import spending_share

    try:
        return spending_share(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--spending: ")) from None


def _run(args: argparse.Namespace) -> int:
    from bench.report import publish
    from bench.settings import Settings

    settings = Settings(out=args.out, quick=args.quick, rules=args.rules, shards=args.shards,
                        durability=args.durability, clients=args.clients, batch_size=args.batch_size,
                        window=args.window, transactions=args.transactions, members=args.members, rate=args.rate,
                        seconds=args.seconds, seed=args.seed, start_date=args.start_date, work=args.work,
                        keep_data=args.keep_data, kills=args.kills, subscriber=args.subscriber,
                        spending=args.spending, hot_members=args.hot_members)
    module = importlib.import_module(SCENARIOS[args.scenario][0])
    result = module.run(settings)
    publish(result, args.out)
    return 0 if result.ok else 1
