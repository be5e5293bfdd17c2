"""`patron events tail`: events for notifiers as JSON lines, the simplest notifier there is."""

import argparse
import json

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction, remote: object) -> None:
    from cli.inputs import whole
    from engine.notices import NOTICE_KINDS

    events = commands.add_parser("events", help="events for notifiers").add_subparsers(metavar="ACTION")
    tail = remote(events.add_parser(  # type: ignore[operator]
        "tail", help="print events as JSON lines as they are committed (Ctrl-C stops)",
        description="Each line has the event's position: give the last one processed as --after to resume "
                    "right after it. Without --after, from the oldest event still held."))
    tail.add_argument("--after", default="", help="a position printed before")
    tail.add_argument("--kinds", nargs="+", default=[], choices=NOTICE_KINDS, metavar="KIND",
                      help=f"only these kinds ({', '.join(NOTICE_KINDS)})")
    tail.add_argument("--count", type=whole("events"), default=0, help="stop after this many events (0: never)")
    tail.add_argument("--name", default="patron-events-tail", help="the subscriber's name in metrics")
    tail.set_defaults(run=tail_events)


def tail_events(args: argparse.Namespace) -> int:
    """A failed call (the server down, a position out of range) ends in one line from cli.main."""
    from cli.admin import _client

    client = _client(args)
    stream = client.subscribe(args.after, args.kinds, name=args.name)
    printed = 0
    try:
        for event in stream:
            line = {"position": event.position, "kind": event.kind, "member_id": event.member_id, "day": event.day,
                    "at_ms": event.at_ms, "detail": json.loads(event.detail or "{}")}
            print(json.dumps(line, ensure_ascii=False), flush=True)
            printed += 1
            if printed == args.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.cancel()
        client.close()
    return 0
