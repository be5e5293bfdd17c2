"""`patron events tail`: events for notifiers as JSON lines, the simplest notifier there is."""

import argparse
import json

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, remote: object) -> None:
    from cli.action_help import ActionsFormatter
    from cli.inputs import whole
    from engine.notices import NOTICE_KINDS

    group = commands.add_parser("events", help="events for notifiers", formatter_class=ActionsFormatter)
    group.set_defaults(help_of=group)  # `patron events` alone: its actions (cli/main.py)
    events = group.add_subparsers(metavar="ACTION")
    tail = remote(events.add_parser(  # type: ignore[operator]
        "tail", help="print events as JSON lines as they are committed (Ctrl-C stops)",
        description="Each line has the event's position: give the last one processed as --after to resume "
                    "right after it. Without --after, from the oldest event still held."))
    tail.add_argument("--after", default="", help="a position printed before")
    tail.add_argument("--kinds", nargs="+", default=[], choices=NOTICE_KINDS, metavar="KIND",
                      help=f"only these kinds ({', '.join(NOTICE_KINDS)})")
    tail.add_argument("--count", type=whole("events"), default=0, help="stop after this many events (0: never)")
    tail.add_argument("--name", default="patron-events-tail", help="the subscriber's name in metrics")
    tail.add_argument("--patience", type=whole("seconds"), default=PATIENCE, metavar="SECONDS",
                      help=f"once patron was reached, how many seconds it may stay unreachable (a restart) before "
                           f"tail gives up (default {PATIENCE})")
    tail.set_defaults(run=tail_events)


PATIENCE = 300
"""Seconds a tail that has reached patron waits for it to come back: a restart takes about 12 s,
and a notifier should outlive one (the retries every command makes cover about 10 s)."""


def tail_events(args: argparse.Namespace) -> int:
    """A failed call (the server down, a position out of range) ends in one line from cli.main:
    a stream that breaks or is refused is opened again right after the last event printed, so
    none is printed twice or left out. Until patron was reached, after the retries every command
    makes; from then on, after `--patience` seconds without reaching it (told once on stderr),
    unless PATRON_RETRIES=0 asked every command to fail at once."""
    import sys
    import time

    import grpc

    from cli.admin import _client
    from client.patron_client import backoff

    client = _client(args)
    after, printed, attempt = args.after, 0, 0
    # when patron last answered (SERVING, or an event): a wrong address still fails as any command's
    patient = client.retries > 0 and args.patience > 0
    reached: float | None = time.monotonic() if patient and client.serving() else None
    try:
        while True:
            stream = client.subscribe(after, args.kinds, name=args.name)
            try:
                for event in stream:
                    attempt, reached = 0, time.monotonic() if patient else None
                    line = {"position": event.position, "kind": event.kind, "member_id": event.member_id,
                            "day": event.day, "at_ms": event.at_ms, "detail": json.loads(event.detail or "{}")}
                    print(json.dumps(line, ensure_ascii=False), flush=True)
                    after, printed = event.position, printed + 1
                    if printed == args.count:
                        return 0
                return 0
            except grpc.RpcError as error:
                attempt += 1
                # a read: past the 32 subscribers (RESOURCE_EXHAUSTED) is as safe to ask again as a restart
                if error.code().name not in _RESUMED:
                    raise
                if reached is not None and attempt <= client.retries and client.serving():
                    reached = time.monotonic()  # (SERVING yet refusing the feed for longer: given up as unreached)
                if reached is None or error.code().name != "UNAVAILABLE":
                    if attempt > client.retries:
                        raise
                elif time.monotonic() - reached > args.patience:
                    raise
                elif attempt == 1:
                    print(f"patron events tail: patron at {client.address} is not answering; waiting up to "
                          f"{args.patience} s, to go on after {after or 'the start'}", file=sys.stderr, flush=True)
                time.sleep(backoff(min(attempt, 6), error))
            finally:
                stream.cancel()
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


_RESUMED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
