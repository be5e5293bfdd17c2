"""The `patron` command: one entry point, a subcommand per job."""

import argparse
import logging
import os
import sys
import traceback
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cli.action_help import ActionsFormatter
from cli.inputs import address, day, day_text, host, path, port, request_id, signed_points, whole
from engine.errors import PatronError, RulesError
from engine.validation import load_rules_file
from storage.mapped_pages import BUDGET_BYTES

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):  # a command, or a group's action, not named: what there is to name
        getattr(args, "help_of", parser).print_help()
        raise SystemExit(2)
    if args.run is _generate and (problem := _generate_problem(args)):
        args.usage.error(f"argument {problem}")
    raise SystemExit(_run(args))


def _run(args: argparse.Namespace) -> int:
    """Every failure ends in one line that says what went wrong, and a non-zero exit: never a
    traceback (PATRON_DEBUG=1 adds it for an unexpected error)."""
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe fails here, where it is answered, not at exit
        return code
    except BrokenPipeError:  # `patron member show ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second failure at exit
        return _fail(args, "the output was closed before it ended (broken pipe)", code=141)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", code=130)
    except PatronError as error:
        return _fail(args, str(error))
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return _fail(args, f"{where}{error.strerror or error}")
    except Exception as error:
        if failed := _rpc_failure(error, args):
            return _fail(args, failed)
        if os.environ.get("PATRON_DEBUG"):
            traceback.print_exc()
        return _fail(args, f"unexpected {type(error).__name__}: {error} (PATRON_DEBUG=1 shows where)")


def _rpc_failure(error: Exception, args: argparse.Namespace) -> str:
    """A gRPC failure in words, or "" when `error` is not one."""
    if "grpc" not in sys.modules:
        return ""
    from cli.admin import rpc_failure

    return rpc_failure(error, getattr(args, "address", ""))


def _fail(args: argparse.Namespace, message: str, code: int = 1) -> int:
    """One line on stderr; `patron serve` writes it as a JSON log line, like all its stderr. The
    lines of a message (a rules document's problems, each on its own) are told apart by "; "."""
    message = "; ".join(" ".join(line.split()) for line in message.splitlines() if line.strip())
    if args.run is _serve:
        logging.getLogger("patron.serve").error(message)
    else:
        print(f"patron: {message}", file=sys.stderr)
    return code


_count, _mib = whole("members"), whole("MiB")


def _version() -> str:
    """The installed package's version (pyproject.toml's), as `make venv` installs it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("patron")
    except PackageNotFoundError:  # run from a clone without `make venv`
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    from cli import admin, bench, events, shards

    parser = argparse.ArgumentParser(prog="patron", description="A loyalty scoring engine.",
                                     formatter_class=ActionsFormatter)
    parser.add_argument("--version", action="version", version=f"patron {_version()}")
    commands = parser.add_subparsers(metavar="COMMAND")
    _serve_parser(commands)
    _replay_parser(commands)
    bench.add_parser(commands)
    events.add_parser(commands, _remote)
    shards.add_parser(commands, _remote)

    _rules_parser(commands)
    _member_parser(commands)

    send = _remote(commands.add_parser("send", help="stream transactions to a running patron"))
    source = send.add_mutually_exclusive_group(required=True)
    source.add_argument("--transactions", type=path, help="a JSONL file, as replay reads")
    source.add_argument("--generate", type=whole("transactions", least=1), metavar="N",
                        help="N generated transactions dated the server's business day")
    send.add_argument("--batch-size", type=whole("transactions", 1, 10_000), default=1000,
                      help="transactions per batch (at most 10,000)")
    send.add_argument("--in-flight", type=whole("batches", 1, 64), default=8,
                      help="batches sent and not yet answered at once (default %(default)s; see Tuning in "
                           "docs/operations.md)")
    send.set_defaults(run=admin.send)

    _import_parser(commands)

    midnight = _remote(commands.add_parser("midnight", help="run the midnight job for a date (and missed ones)"))
    midnight.add_argument("--date", type=day_text, required=True,
                          help="the local date whose midnight to run: the run at the start of D closes day D-1 "
                               "(its expiries, tiers and anomaly report), after any dates missed before it")
    midnight.add_argument("--allow-future", action="store_true",
                          help="test systems: allow a date after tomorrow (it expires points and ends tiers early)")
    midnight.set_defaults(run=admin.midnight)
    anomalies = _remote(commands.add_parser("anomalies", help="the members over the daily anomaly threshold on a "
                                                              "day (once its midnight run has run)"))
    anomalies.add_argument("--date", type=day_text, required=True, help="the day reported on (YYYY-MM-DD)")
    anomalies.add_argument("--json", action="store_true", help="the report as JSON")
    anomalies.set_defaults(run=admin.anomalies)
    _remote(commands.add_parser("checkpoint", help="checkpoint every shard now")).set_defaults(run=admin.checkpoint)
    _remote(commands.add_parser("status", help="shards, rule version, recalculation")).set_defaults(run=admin.status)

    restore = commands.add_parser("restore", help="bring a stopped data folder back to a checkpoint")
    restore.add_argument("--data", type=path, required=True, help="the data folder, with the server stopped")
    restore.add_argument("--checkpoint", required=True, help="its name (see DATA/checkpoints)")
    restore.set_defaults(run=_restore)

    _generate_parser(commands)
    return parser


def _rules_parser(commands: argparse._SubParsersAction) -> None:
    from cli import admin

    group = commands.add_parser("rules", help="check and publish rules documents", formatter_class=ActionsFormatter)
    group.set_defaults(help_of=group)  # `patron rules` alone: its actions (main)
    rules = group.add_subparsers(metavar="ACTION")
    validate = rules.add_parser("validate", help="check a rules file; print every problem")
    validate.add_argument("file", type=path)
    validate.set_defaults(run=_validate)
    publish = _remote(rules.add_parser("publish", help="publish a rules file to a running patron"))
    publish.add_argument("file", type=path)
    publish.add_argument("--count-past-spend", action="store_true",
                         help="when tiers are first activated, judge members on spend recorded before")
    publish.set_defaults(run=admin.publish)


def _generate_parser(commands: argparse._SubParsersAction) -> None:
    from cli import bench

    generate = commands.add_parser("generate", help="write a seeded, realistic transaction stream (JSONL)")
    generate.add_argument("--out", type=path, required=True, help="the JSONL file to write")
    generate.add_argument("--transactions", type=whole("transactions"), default=100_000,
                          help="how many (default %(default)s)")
    generate.add_argument("--members", type=whole("members", 1), default=10_000,
                          help="members they come from (default %(default)s)")
    generate.add_argument("--days", type=whole("days", 1), default=3, help="days they span (default %(default)s)")
    generate.add_argument("--start", type=day_text, help="first local date (YYYY-MM-DD; default: the stream "
                                                             "ends today, so that a server takes it)")
    generate.add_argument("--seed", type=int, default=1, help="the same seed writes the same stream (default 1)")
    generate.add_argument("--spending", type=bench.spending_option, default=0.0,
                          help="share of spending transactions: redeems, recharges, payments, coupons (0 to 0.85)")
    generate.set_defaults(run=_generate, usage=generate)


def _member_parser(commands: argparse._SubParsersAction) -> None:
    from cli import adjustment, admin, wallet
    from client.patron_client import STATUS_ACTIONS

    group = commands.add_parser("member", help="look at members", formatter_class=ActionsFormatter)
    group.set_defaults(help_of=group)  # `patron member` alone: its actions (main)
    member = group.add_subparsers(metavar="ACTION")
    show = _remote(member.add_parser("show", help="a member, and with --ledger its whole ledger"))
    show.add_argument("member_id")
    show.add_argument("--ledger", action="store_true", help="with its ledger: one row per change, and why")
    show.add_argument("--json", action="store_true",
                      help='the machine form: the member as JSON; with --ledger {"member": ..., "ledger": [...]}')
    show.set_defaults(run=admin.member_show)
    tag = _remote(member.add_parser("tag", help="add or remove an operator's tags (kept apart from computed ones)"))
    tag.add_argument("member_id")
    tag.add_argument("--add", action="append", default=[], metavar="TAG")
    tag.add_argument("--remove", action="append", default=[], metavar="TAG")
    tag.add_argument("--reason", required=True, help="why: kept in the member's ledger")
    tag.set_defaults(run=admin.member_tag)
    tier = _remote(member.add_parser("tier", help="put a member in a tier by hand (valid from the business day)"))
    tier.add_argument("member_id")
    tier.add_argument("tier", help="a tier's name in the rules in force")
    tier.add_argument("--reason", required=True, help="why: kept in the member's ledger")
    tier.set_defaults(run=admin.member_tier)
    enroll = _remote(member.add_parser("enroll", help="enroll a member, or update an enrolled one's profile"))
    enroll.add_argument("member_id")
    enroll.add_argument("--channel", help="where they enrolled (a new member gets the channel's default tier: "
                                          "docs/rules.md)")
    enroll.add_argument("--birthday", help="MM-DD or YYYY-MM-DD")
    enroll.add_argument("--source", help="where they came from (a campaign's source, say)")
    enroll.add_argument("--content")
    enroll.add_argument("--campaign")
    enroll.set_defaults(run=admin.member_enroll)
    card = _remote(member.add_parser("status", help="freeze, unfreeze, report lost, cancel a loss, clear "
                                                    "abnormal, release or void held points"))
    card.add_argument("member_id")
    card.add_argument("action", choices=STATUS_ACTIONS)
    card.add_argument("--reason", required=True, help="why: kept in the member's ledger")
    card.set_defaults(run=admin.member_status)
    adjust = _remote(member.add_parser("adjust", help="add or take away points by hand, with a reason (applied once "
                                                      "per request id)"))
    adjust.add_argument("member_id")
    adjust.add_argument("--points", type=signed_points, required=True, help="signed: -500 takes 500 away")
    adjust.add_argument("--reason", required=True, help="why: kept in the member's ledger")
    adjust.add_argument("--request-id", type=request_id, help="the adjustment's idempotency key (default: a new "
                        "one, named if the call fails; give it to send the same adjustment again)")
    adjust.set_defaults(run=adjustment.member_adjust)
    wallet.add_parsers(member, _remote)


def _import_parser(commands: argparse._SubParsersAction) -> None:
    from cli import admin
    from client.import_file import FORMATS

    command = _remote(commands.add_parser(
        "import", help="members and opening balances from a CSV or JSONL file (resumes a run cut short)"))
    command.add_argument("file", type=path)
    command.add_argument("--format", choices=FORMATS, help="default: from the file's suffix")
    command.add_argument("--report", type=path, help="rejected rows as CSV (default FILE.rejected.csv)")
    command.add_argument("--progress", type=path,
                         help="where the import keeps its place (default FILE.import-progress)")
    command.add_argument("--import-id", help="the import's idempotency key (default: the file's name and a digest)")
    command.add_argument("--restart", action="store_true", help="start from the top, not where the last run stopped")
    command.add_argument("--chunk", type=whole("rows", 1, 10_000), default=2_000, help="rows per call (at most 10,000)")
    command.add_argument("--in-flight", type=whole("calls", 1), default=4, help="calls waiting for an answer at once")
    command.set_defaults(run=admin.import_members)


def _remote(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from cli.admin import DEFAULT_ADDRESS

    command.add_argument("--address", type=address, default=DEFAULT_ADDRESS,
                         help=f"patron's gRPC address ({DEFAULT_ADDRESS})")
    return command


def _serve_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the engine: shards on Ray, LMDB, the gRPC gateway")
    serve.add_argument("--data", type=path, required=True, help="the data folder (created if new)")
    serve.add_argument("--rules", type=path, help="published on start when newer than the folder's version "
                                                "(required for a new folder)")
    serve.add_argument("--grpc-port", type=port(), default=50051, help="default %(default)s; 0 picks a free port")
    serve.add_argument("--metrics-port", type=port(-1), default=9464,
                       help="default %(default)s; 0 picks a free port, -1 turns it off")
    serve.add_argument("--host", default="127.0.0.1", type=host, help="the address to listen on (default %(default)s)")
    serve.add_argument("--shards", type=whole("shards", least=1), default=0,
                       help="for a new folder: shards (default one per CPU)")
    serve.add_argument("--ray-address", help="join this Ray cluster instead of starting one")
    serve.add_argument("--gateway-per-node", action="store_true",
                       help="with --ray-address: a gRPC gateway (and /metrics) on every node labelled patron-node")
    serve.add_argument("--durability", choices=("strict", "relaxed"), default="strict",
                       help="strict (the default): every commit synced before it is acknowledged")
    serve.add_argument("--midnight", choices=("clock", "manual"), default="clock",
                       help="clock (the default): run at local 00:00; manual: only `patron midnight`")
    serve.add_argument("--start-date", type=day, default=0, help="a new folder's first business day")
    serve.add_argument("--allow-future", action="store_true",
                       help="allow a --start-date after tomorrow on the programme's clock (test systems)")
    serve.add_argument("--hot-members", type=_count, default=0, metavar="N",
                       help="members each shard keeps in memory (default 0: all); the rest are read from LMDB")
    serve.add_argument("--mapped-budget-mib", type=_mib, default=BUDGET_BYTES >> 20, metavar="MIB",
                       help="a shard's file-backed memory above which it gives LMDB's mapped pages back "
                            "(default %(default)s; 0: never)")
    serve.add_argument("--drain-seconds", type=whole("seconds", 0, 600), default=0, metavar="S",
                       help="at a stop, answer S seconds more with health NOT_SERVING, for load balancers to "
                            "move away (default 0)")
    serve.add_argument("--demo", type=whole("transactions"), default=0, metavar="N",
                       help="stream N demo transactions after start")
    serve.add_argument("--tokens", type=path, help="bearer tokens: one `role token` per line (also PATRON_TOKENS)")
    serve.add_argument("--tls-cert", type=path, help="the server's certificate (PEM); with --tls-key turns on TLS")
    serve.add_argument("--tls-key", type=path, help="the server's private key (PEM)")
    serve.add_argument("--tls-client-ca", type=path, help="require client certificates signed by this CA (PEM)")
    serve.set_defaults(run=_serve)


def _replay_parser(commands: argparse._SubParsersAction) -> None:
    replay = commands.add_parser("replay", help="score a JSONL file of transactions in one process")
    replay.add_argument("--rules", type=path, required=True, help="the rules file (TOML)")
    replay.add_argument("--transactions", type=path, required=True, help="a JSONL file, a transaction a line")
    replay.add_argument("--members-out", type=path, required=True, help="every member's state at the end (JSONL)")
    replay.add_argument("--results-out", type=path, required=True, help="each transaction's result, in order (JSONL)")
    replay.add_argument("--ledger-out", type=path, help="also write every ledger entry (JSONL)")
    replay.add_argument("--anomalies-out", type=path, help="also write the daily anomaly reports (JSONL)")
    replay.add_argument("--until", type=day, help="then run every midnight up to the one that starts this date")
    replay.set_defaults(run=_replay)


def _validate(args: argparse.Namespace) -> int:
    try:
        rules = load_rules_file(args.file, new=True)
    except RulesError as error:
        for problem in error.told:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid (programme {rules.programme!r}, version {rules.version}, "
          f"{len(rules.tiers)} tiers)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from actors.config import ServeConfig
    from actors.logs import configure_logging
    from cli.serve import run_serve
    from storage.folder import version_in_force

    configure_logging()
    if bool(args.tls_cert) != bool(args.tls_key):
        return _fail(args, "--tls-cert and --tls-key go together", code=2)
    if args.metrics_port == args.grpc_port > 0:  # refused only once Ray and the shards had started (a probe)
        return _fail(args, f"--metrics-port and --grpc-port are both {args.grpc_port}: give each its own port",
                     code=2)
    if args.tls_client_ca and not args.tls_cert:  # it served in plain text, asking for no certificate
        return _fail(args, "--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for "
                           "over TLS", code=2)
    config = ServeConfig(data=args.data, rules=args.rules, host=args.host, grpc_port=args.grpc_port,
                         metrics_port=args.metrics_port, shards=args.shards, ray_address=args.ray_address,
                         durability=args.durability, midnight=args.midnight, start_date=args.start_date,
                         allow_future=args.allow_future,
                         tokens_file=args.tokens, tls_cert=args.tls_cert, tls_key=args.tls_key,
                         tls_client_ca=args.tls_client_ca, gateway_per_node=args.gateway_per_node,
                         hot_members=args.hot_members, mapped_budget_mib=args.mapped_budget_mib,
                         drain_seconds=args.drain_seconds)
    if args.gateway_per_node and not args.ray_address:
        return _fail(args, "--gateway-per-node needs --ray-address (one machine has one gateway)", code=2)
    try:
        if args.rules is not None:  # a bad file is told in a second, not after Ray's start, every problem at once
            load_rules_file(args.rules, over=version_in_force(args.data))
        return run_serve(config, demo=args.demo)
    except RulesError as error:
        logging.getLogger("patron.serve").error("the rules file has problems",
                                                extra={"file": str(args.rules), "problems": error.told})
        return 1


def _replay(args: argparse.Namespace) -> int:
    from actors.object_memory import prepare_to_replay
    from cli.replay import ReplayFiles, replay_files

    prepare_to_replay(logging.getLogger("patron.replay"))
    files = ReplayFiles(rules=args.rules, transactions=args.transactions, members_out=args.members_out,
                        results_out=args.results_out, ledger_out=args.ledger_out,
                        anomalies_out=args.anomalies_out, until=args.until)
    try:
        stats = replay_files(files)
    except RulesError as error:
        for problem in error.told:
            print(f"{args.rules}: {problem}", file=sys.stderr)
        return 1
    print(f"replay: {stats.transactions:,} transactions in {stats.seconds:.2f} s "
          f"({stats.per_second:,.0f} per second), {stats.malformed:,} malformed", file=sys.stderr)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from storage.checkpoints import missing_checkpoint, restore_checkpoint
    from storage.folder import DataFolder

    if not (args.data / "checkpoints").is_dir():  # DataFolder would make an empty one
        print(f"patron: {args.data} is not a data folder (no checkpoints/ in it); --data names the folder "
              f"patron serve ran with", file=sys.stderr)
        return 1
    if missing := missing_checkpoint(args.data / "checkpoints", args.checkpoint):  # before DataFolder makes folders
        print(f"patron: {missing}", file=sys.stderr)
        return 1
    folder = DataFolder(args.data)
    if pid := folder.served():
        print(f"patron: {args.data} is being served by process {pid}; stop it first", file=sys.stderr)
        return 1
    if (layout := folder.layout()) is not None and layout.nodes:  # it said "restored" and restored nothing
        print(f"patron: {args.data}'s shards live on the nodes of a Ray cluster (PATRON_NODE_DATA/"
              f"{layout.folder_id}/shards/NNN on each node), out of this command's reach: restoring a "
              f"cluster's folder is not automatic yet; nothing was changed (docs/operations.md, "
              f"\"A Ray cluster\")", file=sys.stderr)
        return 1
    try:
        manifest = restore_checkpoint(folder, args.checkpoint)
    except FileNotFoundError as error:
        print(f"patron: {error}", file=sys.stderr)
        return 1
    print(f"restored {args.data} to checkpoint {manifest.name} (business day {manifest.business_day}, "
          f"rules version {manifest.rule_version}, {manifest.shards} shards)")
    return 0


def _generate_start(args: argparse.Namespace) -> str:
    # a fixed default date fell behind max_lateness_days: a newcomer's generate, then send, was all too_late
    return args.start or (date.today() - timedelta(days=args.days - 1)).isoformat()


def _generate_problem(args: argparse.Namespace) -> str:
    """Days a stream would run over that hold times patron refuses (SPEC §2: from 2000-01-01 to the
    end of 2100, UTC), as an argument out of its range is: they were written, and then rejected
    `bad_timestamp`. The days are the generator's programme's (its time zone)."""
    from bench.workload import Workload
    from engine.bounds import EARLIEST_MS, LATEST_MS

    named = Workload().timezone
    zone = ZoneInfo(named)
    try:
        first = date.fromisoformat(_generate_start(args))
        last = first + timedelta(days=args.days - 1)
        starts = datetime.combine(first, time(), zone).timestamp() * 1000
        ends = datetime.combine(last + timedelta(days=1), time(), zone).timestamp() * 1000
    except OverflowError:
        return ("--start and --days: the stream's days run past what a calendar holds; patron takes times "
                "from 2000-01-01 to 2100-12-31 UTC")
    if starts < EARLIEST_MS or ends > LATEST_MS:
        return (f"--start and --days: the stream's days run from {first} to {last} ({named}); patron "
                f"takes times from 2000-01-01 to 2100-12-31 UTC")
    return ""


def _generate(args: argparse.Namespace) -> int:
    from bench.workload import Workload, write_jsonl

    start = _generate_start(args)
    workload = Workload(transactions=args.transactions, members=args.members, days=args.days,
                        start=start, seed=args.seed, spending_share=args.spending)
    count = write_jsonl(args.out, workload)
    print(f"generate: {count:,} transactions for {args.members:,} members over {args.days} day{'s' * (args.days != 1)} "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
