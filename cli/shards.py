"""`patron shards move` and `patron shards rebalance`: virtual shards moved between the shards of a
running patron while it serves (actors/resharding.py)."""

import argparse
import sys
from typing import Any

from cli.action_help import ActionsFormatter
from cli.inputs import whole
from engine.errors import PatronError

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, remote: object) -> None:
    group = commands.add_parser("shards", help="move virtual shards between shards, add shards",
                                formatter_class=ActionsFormatter)
    group.set_defaults(help_of=group)  # `patron shards` alone: its actions (cli/main.py)
    shards = group.add_subparsers(metavar="ACTION")
    move = remote(shards.add_parser(  # type: ignore[operator]
        "move", help="move one virtual shard to another shard while ingestion goes on"))
    # the upper bounds are the folder's, which the server checks
    move.add_argument("vshard", type=whole("virtual shard"), metavar="VSHARD",
                      help="the virtual shard (a member's: `patron shards of MEMBER_ID`)")
    move.add_argument("--to", type=whole("shard"), required=True, metavar="SHARD", help="the shard that will own it")
    move.set_defaults(run=_move)
    rebalance = remote(shards.add_parser(  # type: ignore[operator]
        "rebalance", help="even out virtual shards over the shards, adding shards first with --shards N"))
    rebalance.add_argument("--shards", type=int, default=0, metavar="N",
                           help="shards when done (more than now: new ones start empty; default: as many as now)")
    rebalance.set_defaults(run=_rebalance)
    for command in (move, rebalance):
        command.add_argument("--no-wait", action="store_true", help="start it and return; `patron status` follows it")
    of = remote(shards.add_parser(  # type: ignore[operator]
        "of", help="the virtual shard of each member id given (whether or not it is enrolled)"))
    of.add_argument("member_ids", nargs="+", metavar="MEMBER_ID", help="a member's id, as transactions give it")
    of.set_defaults(run=_of)


def _move(args: argparse.Namespace) -> int:
    return _run(args, lambda client: client.move_virtual_shard(args.vshard, args.to))


def _rebalance(args: argparse.Namespace) -> int:
    return _run(args, lambda client: client.rebalance(args.shards))


def _of(args: argparse.Namespace) -> int:
    """Which virtual shard holds each member: what `move` takes (an operator had only counts and the
    layout's file to go by: an outside probe). The count of virtual shards is the server's."""
    from actors.routing import VIRTUAL_SHARDS, virtual_shard
    from cli.admin import _client
    from engine.ids import id_problem, id_requirement

    for member_id in args.member_ids:  # "" was answered virtual shard 0 (an outside probe)
        if id_problem(member_id):
            raise PatronError(f"{id_requirement('MEMBER_ID')}, got {member_id!r}")
    with _client(args) as client:  # a server that does not say has every folder's count
        virtual_shards = client.status().virtual_shards or VIRTUAL_SHARDS
    for member_id in args.member_ids:
        print(f"{member_id}: virtual shard {virtual_shard(member_id, virtual_shards)}")
    return 0


def _run(args: argparse.Namespace, start: Any) -> int:
    """The moves go on in the server; this follows them to the end, with progress on stderr."""
    from cli.admin import _client, counted, followed

    with _client(args) as client:
        started = start(client)
        print(f"moving {counted(started.planned, 'virtual shard')} over {counted(started.shards, 'shard')}"
              + (" (each is where it was asked to be already)" if not started.planned else ""), file=sys.stderr,
              flush=True)
        if args.no_wait:
            return 0
        return followed(lambda: _ended(client.follow_resharding(progress=_progress)), "resharding")[0]


def _ended(moving: Any) -> Any:
    """The last progress line is the end's, not the last one seen while it ran."""
    _progress(moving)
    return moving


def _progress(moving: Any) -> None:
    now = f"virtual shard {moving.virtual_shard} to shard {moving.to}" if moving.virtual_shard >= 0 else "..."
    print(f"resharding: {moving.done:,} of {moving.planned:,} virtual shards moved ({now}), "
          f"{moving.members_moved:,} members, {moving.seconds:.0f} s", file=sys.stderr, flush=True)
