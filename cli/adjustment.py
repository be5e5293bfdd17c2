"""`patron member adjust`: an operator's points correction, applied once per request id.

Over the API an adjustment is a transaction whose id is the request id (docs/api.md, `Adjust`):
sent again with the same id it is answered as the first time and changes nothing. The command
makes an id when the operator gives none, and names it whenever the call's fate is unknown, so
that the same adjustment can be sent again without being applied twice."""

import argparse
import sys
import uuid

import grpc

from cli.admin import UNKNOWN_FATE, _client, grpc_outcome, print_member, rpc_failure
from client.patron_client import PatronClient
from engine.errors import PatronError
from proto import patron_pb2 as pb

__all__ = ["AdjustmentError", "member_adjust"]



LEDGER_PAGE = 500
"""Ledger entries read at a time when finding what first used a request id."""


class AdjustmentError(PatronError):
    """An adjustment not made: refused by the engine, for a member who does not exist, or a call
    that failed (the message says whether it may have been applied)."""


def member_adjust(args: argparse.Namespace) -> int:
    request_id = args.request_id if args.request_id is not None else f"adj-{uuid.uuid4().hex}"
    again = f"to send the same adjustment again, give --request-id {request_id}: it is applied at most once"
    try:
        with _client(args) as client:
            answer = _adjusted(client, args, request_id)
            first = _first_use(client, args, request_id) if _is_duplicate(answer.result) else None
    except grpc.RpcError as error:
        fate = again if error.code() in UNKNOWN_FATE else "nothing changed"
        raise AdjustmentError(f"{rpc_failure(error, args.address)} (request id {request_id}; {fate})") from None
    except KeyboardInterrupt:  # the call may have been applied: its id must not be lost with it
        print(f"patron: interrupted (request id {request_id}; {again})", file=sys.stderr)
        return 130
    _tell(answer.result, args, request_id, first)
    print_member(answer.member)
    return 0


def _adjusted(client: PatronClient, args: argparse.Namespace, request_id: str) -> pb.AdjustResponse:
    # only to a member who exists: an adjustment is a transaction, and where the programme enrolls
    # unknown members one for a mistyped id made a new member with the points
    if client.member(args.member_id) is None:
        raise AdjustmentError(f"no member {args.member_id!r}: nothing changed (check the id; a new member is "
                              f"enrolled with `patron member enroll` first)")
    return client.adjust(args.member_id, args.points, args.reason, request_id)


def _is_duplicate(result: pb.TxnResult) -> bool:
    return grpc_outcome(result.outcome) == "duplicate"


def _first_use(client: PatronClient, args: argparse.Namespace, request_id: str) -> list[pb.LedgerEntry]:
    """The ledger entries an earlier transaction with this id wrote (only when the id was answered
    `duplicate`): the member's ledger read a page at a time, up to the page past them (one
    transaction's entries lie together). A read that fails says the adjustment was not applied
    again: the call was answered, only whose the id is is left unknown."""
    found: list[pb.LedgerEntry] = []
    after = 0
    try:
        while True:
            page = client.ledger(args.member_id, after_seq=after, limit=LEDGER_PAGE)
            found += [entry for entry in page if entry.ref == request_id]
            if len(page) < LEDGER_PAGE or (found and page[-1].ref != request_id):
                return found
            after = page[-1].seq
    except grpc.RpcError as error:
        raise AdjustmentError(
            f"request id {request_id} was used before: this adjustment was not applied again; what used it could "
            f"not be read ({rpc_failure(error, args.address)}): see `patron member show {args.member_id} --ledger`"
        ) from None


def _tell(result: pb.TxnResult, args: argparse.Namespace, request_id: str,
          first: list[pb.LedgerEntry] | None = None) -> None:
    """A rejection fails the command; on stderr, what was done when it is not what was asked.
    `first`: for a duplicate, the ledger entries of the id's first use."""
    outcome = grpc_outcome(result.outcome)
    if outcome == "rejected":
        raise AdjustmentError(f"adjustment rejected: {result.reason} (request id {request_id}; nothing changed)")
    if outcome == "duplicate":
        _tell_duplicate(result, args, request_id, first or [])
    elif outcome == "accepted" and result.points != args.points:
        print(f"took {-result.points:,} of the {-args.points:,} points asked: the balance may not go below 0 (the "
              f"rules' allow_negative_points = false); the ledger entry keeps the rest as not recovered",
              file=sys.stderr)


def _tell_duplicate(result: pb.TxnResult, args: argparse.Namespace, request_id: str,
                    first: list[pb.LedgerEntry]) -> None:
    """The id was applied before. By this adjustment (this command's own retry after a lost
    answer, or the operator sending it again): not a failure. By anything else (the id of a
    purchase, or of another adjustment): this one was not made, which the command must not pass
    off as done."""
    adjustments = [entry for entry in first if entry.kind == "adjust"]
    if adjustments and not any(_same(entry, args) for entry in adjustments):
        # perhaps this one sent before with its reason or points edited: resending it under a new id
        # would apply it twice, so the operator is asked to judge, not told to resend
        raise AdjustmentError(f"request id {request_id} was used by an adjustment unlike this one "
                              f"({'; '.join(map(_described, adjustments))}): nothing more was applied; if that was "
                              f"this adjustment it is done, if not send this one with another request id")
    if not adjustments:
        wrote = "; ".join(_described(entry) for entry in first) or "it wrote no ledger entry"
        raise AdjustmentError(f"request id {request_id} is the id of another of the member's transactions ({wrote}): "
                              f"this adjustment was not applied; send it with another request id, or none")
    # perhaps this command's own retry after a lost answer: not a sign that nothing was done
    print(f"adjustment {request_id} was applied once already, by an earlier send of this id (perhaps this "
          f"command's own retry): {result.points:+,} points; not applied again", file=sys.stderr)


def _described(entry: pb.LedgerEntry) -> str:
    note = f" {entry.note!r}" if entry.note else ""
    return f"ledger entry {entry.seq}: {entry.kind} {entry.points:+,} points{note}"


def _same(entry: pb.LedgerEntry, args: argparse.Namespace) -> bool:
    """An adjustment's entry for the points and reason asked: what it could not take from a balance
    that may not go below 0 is kept as not recovered, so it asked its points less that."""
    return entry.points - entry.unrecovered == args.points and entry.note.strip() == args.reason.strip()
