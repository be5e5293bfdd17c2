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
    """A failed call (the server down, a position out of range) ends in one line from cli.main,
    once the retries every command makes are spent: a stream that breaks or is refused is opened
    again right after the last event printed, so none is printed twice or left out."""
    import time

    import grpc

    from cli.admin import _client
    from client.patron_client import backoff

    client = _client(args)
    after, printed, attempt = args.after, 0, 0
    try:
        while True:
            stream = client.subscribe(after, args.kinds, name=args.name)
            try:
                for event in stream:
                    attempt = 0
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
                if error.code().name not in _RESUMED or attempt > client.retries:
                    raise
                time.sleep(backoff(attempt, error))
            finally:
                stream.cancel()
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


_RESUMED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
