"""The operator commands that talk to a running patron over gRPC."""

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from client import PatronClient, UnsendableError, sendable_token, transaction_message
from engine.calendar import date_span
from engine.errors import InvalidRequestError, PatronError
from proto import patron_pb2 as pb

if TYPE_CHECKING:
    from bench.workload import Workload

__all__ = ["UNKNOWN_FATE", "anomalies", "checkpoint", "import_members", "member_enroll", "member_show",
           "member_status", "member_tag", "member_tier", "midnight", "print_member", "publish", "rpc_failure", "send",
           "status"]

DEFAULT_ADDRESS = os.environ.get("PATRON_ADDRESS", "127.0.0.1:50051")


def _client(args: argparse.Namespace) -> PatronClient:
    """PATRON_TOKEN is sent as the bearer token; PATRON_TLS_CA (a PEM file) turns on TLS, with
    PATRON_TLS_CERT and PATRON_TLS_KEY for a client certificate."""
    def pem(name: str) -> bytes | None:
        path = os.environ.get(name)
        return Path(path).read_bytes() if path else None

    certificate, key = pem("PATRON_TLS_CERT"), pem("PATRON_TLS_KEY")
    if (certificate is None) != (key is None) or b"" in (certificate, key):
        # one alone (or an empty file) made gRPC's core abort the process with a C++ stack trace (a probe)
        raise PatronError("PATRON_TLS_CERT and PATRON_TLS_KEY go together: the client certificate's PEM file and "
                          "its key's, neither of them empty, or neither")
    token = os.environ.get("PATRON_TOKEN") or None
    if token is not None and not sendable_token(token):
        raise PatronError("PATRON_TOKEN: a bearer token is printable ASCII without spaces (a file saved with Windows "
                          "line endings leaves a carriage return at its end)")
    return PatronClient(args.address, token=token, retries=retries(),
                        root_certificates=pem("PATRON_TLS_CA"), certificate_chain=certificate, private_key=key)


def retries() -> int:
    """PATRON_RETRIES: how often a refused or unreachable call is tried again (default 8, about
    10 s in all); a script that wants to fail fast against a stopped server sets 0."""
    text = os.environ.get("PATRON_RETRIES", "8")
    if not text.isdigit():
        raise InvalidRequestError(f"PATRON_RETRIES must be a whole number of retries, not {text!r}")
    return int(text)


def _show(message: Any) -> None:
    # fields at their default shown too: proto3 JSON leaves out `"shard": 0`, `"running": false`...
    shown = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    print(json.dumps(_dates_shortened(_as_declared(message.DESCRIPTOR, shown)), indent=2, ensure_ascii=False))


def _as_declared(descriptor: Any, shown: dict) -> dict:
    """Fields in the order the proto declares them, 64-bit integers as numbers: proto3's JSON writes
    those as strings ("members": "1073" beside "virtual_shards": 1024) and a field at its default
    after the others, so two shards' entries came in different orders (an outside probe)."""
    return {field.name: _declared_value(field, shown[field.name]) for field in descriptor.fields if field.name in shown}


def _declared_value(field: Any, value: Any) -> Any:
    repeated = field.is_repeated
    if field.message_type is not None and field.message_type.GetOptions().map_entry:  # a map: its values as declared
        entry = field.message_type.fields_by_name["value"]
        return {key: _declared_value(entry, item) for key, item in value.items()}
    if field.message_type is not None:
        if field.message_type.full_name.startswith("google.protobuf."):  # a well-known type's own JSON
            return value
        kind = field.message_type
        return [_as_declared(kind, v) for v in value] if repeated else _as_declared(kind, value)
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        return [int(v) for v in value] if repeated else int(value)
    return value


def _dates_shortened(shown: Any) -> Any:
    if isinstance(shown, dict):
        return {key: (date_span(value) if key == "dates" else _dates_shortened(value)) for key, value in shown.items()}
    return [_dates_shortened(item) for item in shown] if isinstance(shown, list) else shown


UNKNOWN_FATE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN,
                          grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.RESOURCE_EXHAUSTED})
"""Failures after which what was sent may or may not have been applied (or was refused for now
and is worth sending again). Any other code (a bad argument, a token's role) changes nothing,
and the same call would fail the same way."""


def rpc_failure(error: BaseException, address: str) -> str:
    """A failed call in one line, or "" when `error` is not one."""
    if not isinstance(error, grpc.RpcError) or not hasattr(error, "code"):
        return ""
    code, details = error.code(), error.details() or ""
    if code is grpc.StatusCode.UNAVAILABLE and ("connect" in details.lower() or "unreachable" in details.lower()):
        return f"cannot reach patron at {address}: {_unreachable(details, bool(os.environ.get('PATRON_TLS_CA')))}"
    return f"{code.name}: {details}"


_NAMED = "--address or PATRON_ADDRESS names it"


def _unreachable(details: str, tls: bool) -> str:
    """Why a connection failed, and what to look at. A TLS mismatch looks like a server that is
    not there (a TLS server closes a plain connection; one that asks for client certificates
    closes a connection without one), so where it may be one, TLS is named."""
    if "handshake" in details.lower():
        # gRPC ends this message with OpenSSL's context ("...: OK"); the reason is the SSL word
        found = re.search(r"OPENSSL_internal:([A-Z_]+)", details)
        why = f"the TLS handshake failed ({found.group(1)})" if found else "the TLS handshake failed"
        return (f"{why} (is it serving TLS, with a certificate signed by the CA PATRON_TLS_CA names? "
                f"Without TLS there, leave PATRON_TLS_CA unset; {_NAMED})")
    reason = details.rsplit(": ", 1)[-1].lower()
    if "socket closed" not in reason:
        return f"{reason} (is `patron serve` running there? {_NAMED})"
    if not tls:
        return (f"{reason} (is `patron serve` running there, with TLS? then PATRON_TLS_CA names its CA's PEM file; "
                f"{_NAMED})")
    return (f"{reason} (is `patron serve` running there, asking for client certificates? then PATRON_TLS_CERT and "
            f"PATRON_TLS_KEY name yours; {_NAMED})")


def send(args: argparse.Namespace) -> int:
    """Stream transactions (a JSONL file, or a generated workload dated on the business day). A line that is
    not a transaction is rejected here, as replay does, and the rest is sent; every rejected
    transaction is listed with its reason, in the file's order. A file's: 0, none rejected; 3, some were."""
    from bench.workload import generate
    from cli.inputs import utf8_file

    if args.transactions:
        utf8_file(args.transactions)
    rejected: list[tuple[int, str]] = []
    counts: dict[str, int] = {}
    lines: deque[int] = deque()
    """The file's line of each transaction sent and not yet answered (answers come in order)."""
    with _client(args) as client:
        if args.transactions:
            source = _transactions(args.transactions, rejected, counts, lines)
        else:
            source = generate(generated_load(args.generate, _business_day(client), time.time_ns()))
        batches = client.batches(source, args.batch_size)
        started, sent = time.perf_counter(), 0
        try:
            for ack in client.stream(named_by_content(batches) if args.transactions else batches,
                                     window=args.in_flight):
                for result in ack.results:
                    sent += 1
                    number = lines.popleft() if lines else sent
                    word = grpc_outcome(result.outcome) + (f" ({result.reason})" if result.reason else "")
                    counts[word] = counts.get(word, 0) + 1
                    if result.outcome == pb.OUTCOME_REJECTED:
                        shown = _shown(result.txn_id)
                        where = f"line {number} ({shown})" if args.transactions else shown
                        rejected.append((number, f"{where}: {result.reason}"))
        except grpc.RpcError as error:
            if not args.transactions or error.code() not in UNKNOWN_FATE:
                raise
            failed = rpc_failure(error, args.address)
            raise PatronError(f"{failed} ({_send_again(sent, args.batch_size)})") from None
        except KeyboardInterrupt:  # as a failure's fate, the batches in flight's is unknown (an outside probe)
            if not args.transactions:
                raise
            print(f"patron: interrupted ({_send_again(sent, args.batch_size)})", file=sys.stderr)
            return 130
    seconds = max(time.perf_counter() - started, 1e-9)
    unsent = sum(counts.values()) - sent  # lines refused here, counted among the outcomes
    print(f"sent {counted(sent, 'transaction')} in {seconds:.1f} s ({sent / seconds:,.0f}/s)"
          # the outcomes count every line, those refused here too: said so (an outside probe read
          # "sent 8 transactions" followed by 9 outcomes)
          # blank lines are neither sent nor counted, though the lines are numbered as the file's (a probe)
          + (f", {counted(unsent, 'line')} not sent; the file's {counted(sent + unsent, 'non-blank line')}"
             if unsent else "")
          + ": "
          + ", ".join(f"{n:,} {word}" for word, n in sorted(counts.items())))
    _list_rejected([text for _, text in sorted(rejected, key=lambda item: item[0])])
    # as import's, for a file: a script sees that something was not taken. A generated load has
    # rejections by design (refunds of what is refunded, resent ids): the quick start's is not a failure
    return 3 if rejected and args.transactions else 0


def _send_again(answered: int, batch_size: int) -> str:
    """What to do after a send cut short (an outside probe re-ran one with another --batch-size:
    its batches then had other ids, and the first send's rejections were scored again)."""
    return (f"{counted(answered, 'transaction')} answered before this; the same command again, with the same "
            f"file and --batch-size {batch_size}, sends the rest: what was applied is answered duplicate and "
            f"each rejection as it was")


def generated_load(transactions: int, day: str, now_ns: int) -> "Workload":
    """`send --generate`'s load, seeded and named by the nanosecond it is sent: by the second, two
    loads sent within one were the same transactions, answered `duplicate` (an outside probe)."""
    from bench.workload import Workload

    return Workload(transactions=transactions, members=max(transactions // 10, 100), days=1, start=day,
                    seed=now_ns, id_prefix=f"S{now_ns:x}-")


def named_by_content(batches: Iterable[pb.TransactionBatch]) -> Iterator[pb.TransactionBatch]:
    """Each batch named by what it holds and every batch before it: a file sent again (a crash
    cut the first send short, and send cannot say how far it got) goes as the same batches under
    the same ids, and each transaction is answered as it was the first time, a rejection too
    (docs/api.md: for two business days). Under new ids, a redeem refused the first time was
    scored again after the file's later purchases, and accepted (an outside probe).

    Each batch's bytes go in after their length: protobuf messages end to end read as one, so
    without it a file's last batch had the same id however `--batch-size` cut the file, and was
    answered with another batch's rejections (an outside probe)."""
    chain = hashlib.blake2b(digest_size=16)
    for batch in batches:
        batch.batch_id = ""  # the client's random one
        data = batch.SerializeToString(deterministic=True)
        chain.update(len(data).to_bytes(8, "big"))
        chain.update(data)
        batch.batch_id = f"send-{chain.hexdigest()}"
        yield batch


def _business_day(client: PatronClient) -> str:
    """The day generated transactions are dated: the server's business day, or where the token
    may not ask for it (a till's `ingest` role, which `send` is for) today on this machine's clock."""
    try:
        days = [shard.business_day for shard in client.status().shards if shard.ready]
        why = "no shard answered GetStatus"
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.PERMISSION_DENIED:
            raise
        days, why = [], "this token may not ask the server for its business day (GetStatus: read or admin role)"
    if days:
        return max(days)
    today = time.strftime("%Y-%m-%d")
    print(f"patron: {why}; the transactions are dated {today}, today on this machine's clock", file=sys.stderr)
    return today


def counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _transactions(path: Path, rejected: list[tuple[int, str]], counts: dict[str, int],
                  lines: deque[int]) -> Iterator[pb.Transaction]:
    """The file's transactions; a line that is not one is counted `rejected (malformed)`, one the
    wire cannot carry with the reason replay gives it (client.UnsendableError). Each one sent
    leaves its line number in `lines`."""
    from cli.inputs import past_bom
    from cli.replay import Malformed, decode_line

    with open(path, "rb") as source:
        for number, line in enumerate(past_bom(source), start=1):
            if not line.strip():
                continue
            txn = decode_line(line)
            if isinstance(txn, Malformed):
                _refuse(rejected, counts, number, txn.txn_id, "malformed", txn.detail)
                continue
            try:
                message = transaction_message(txn)
            except UnsendableError as error:
                _refuse(rejected, counts, number, txn.txn_id, error.reason, str(error))
                continue
            lines.append(number)
            yield message


SHOWN_ID = 120
"""Characters of a rejected transaction's id the listing shows: an id of millions (rejected
`id_too_long`) was printed whole, one line of 5 MB (an outside probe)."""


def _shown(txn_id: str) -> str:
    return txn_id if len(txn_id) <= SHOWN_ID else f"{txn_id[:SHOWN_ID]}… ({len(txn_id):,} characters)"


def _refuse(rejected: list[tuple[int, str]], counts: dict[str, int], number: int, txn_id: str, reason: str,
            detail: str) -> None:
    named = f" ({_shown(txn_id)})" if txn_id else ""
    rejected.append((number, f"line {number}{named}: {reason}: {detail}"))
    counts[f"rejected ({reason})"] = counts.get(f"rejected ({reason})", 0) + 1


def _list_rejected(rejected: list[str]) -> None:
    """Every one (README promises it; a hundred, then a count, left a file's others unnamed)."""
    if rejected:
        print(f"rejected ({len(rejected):,}):")
        for line in rejected:
            print(f"  {line}")


def grpc_outcome(value: int) -> str:
    return pb.Outcome.Name(value).removeprefix("OUTCOME_").lower()


def member_show(args: argparse.Namespace) -> int:
    from cli.show import entry_summary, ledger_table, member_card, member_json, member_summary

    with _client(args) as client:
        found = client.member(args.member_id)
        if found is None:
            print(f"patron: no member {args.member_id!r}", file=sys.stderr)
            return 1
        member = member_summary(found)
        ledger = [entry_summary(entry) for entry in client.ledger(args.member_id)] if args.ledger else None
    if args.json:
        print(member_json(member, ledger))
        return 0
    print(member_card(member))
    if ledger is not None:
        print()
        print(ledger_table(ledger))
    return 0


def print_member(message: pb.Member) -> None:
    """A member as a command that changed it leaves it: the one shape the command prints a member
    in (member show --json)."""
    from cli.show import member_json, member_summary

    print(member_json(member_summary(message)))


def member_tag(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print_member(client.set_tags(args.member_id, args.add, args.remove, args.reason))
    return 0


def member_tier(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print_member(client.set_tier(args.member_id, args.tier, args.reason))
    return 0


def member_enroll(args: argparse.Namespace) -> int:
    """Enrolling a member who exists is not a failure (a till may enroll at every visit): its
    profile fields given are updated, and stderr says so."""
    fields = {name: value for name in ("channel", "birthday", "source", "content", "campaign")
              if (value := getattr(args, name))}
    with _client(args) as client:
        answer = client.enroll(args.member_id, **fields)
    if not answer.created:
        # a retry after a lost answer finds the member its first try made: not a sign of a duplicate
        print(f"member {args.member_id} was enrolled already (before, or by this command's own retry)"
              + ("; the profile fields given were updated" if fields else ""), file=sys.stderr)
    print_member(answer.member)
    return 0


def member_status(args: argparse.Namespace) -> int:
    """Each action is idempotent (docs/api.md, SetStatus)."""
    with _client(args) as client:
        print_member(client.set_status(args.member_id, args.action, args.reason))
    return 0


def publish(args: argparse.Namespace) -> int:
    from cli.inputs import utf8_text

    rules = utf8_text(Path(args.file))
    with _client(args) as client:
        answer = client.publish_rules(rules, args.count_past_spend)
    print(f"published rules version {answer.version}"
          + ("; every member is being re-evaluated (see `patron status`)" if answer.reevaluating else ""))
    return 0


def midnight(args: argparse.Namespace) -> int:
    """The run goes on in the server; this follows it to the end, with its progress on stderr. A
    date the business day had passed is run no more: said so, where it passed in silence (an
    outside probe)."""
    with _client(args) as client:
        client.run_midnight(args.date, allow_future=args.allow_future, background=True)
        code, run = followed(lambda: client.follow_midnight(progress=_midnight_progress), "the midnight run")
    if code == 0 and args.date not in run.dates:
        print(f"patron: nothing to run for {args.date}: the business day is already {args.date} or later (its "
              f"run has run, or the folder started after it)", file=sys.stderr)
    return code


def followed(follow: Callable[[], Any], what: str) -> tuple[int, Any]:
    """Follow a job the server runs to its end and show it: 0, 1 when it stopped short, 130 when
    the operator stopped following (the job goes on); and the job as last seen (None then)."""
    try:
        job = follow()
    except KeyboardInterrupt:
        print(f"patron: no longer following; {what} goes on in the server (see `patron status`)", file=sys.stderr)
        return 130, None
    _show(job)
    if job.error:
        print(f"patron: {what} stopped short: {job.error}", file=sys.stderr)
        return 1, job
    return 0, job


def _midnight_progress(run: pb.MidnightProgress) -> None:
    print(midnight_progress_line(run), file=sys.stderr, flush=True)


def midnight_progress_line(run: pb.MidnightProgress) -> str:
    """Before a date's members are counted (the run's start, or a cut run's reports left) no date
    is under way: "0 of 0 members" read as an empty store. A date visits only the members due
    that day (a tier's end, points' expiry, a reminder...): "0 of 0 members" there read as nothing
    run yet (an outside probe)."""
    where = "starting"
    if run.date and run.members_total:
        where = f"{run.date}: {run.members_done:,} of {run.members_total:,} members due"
    elif run.date:
        where = f"{run.date}: no member due"
    dates = f"{len(run.dates)} date{'s' * (len(run.dates) != 1)}"
    return f"midnight until {run.until} ({dates} done), {where}, {run.seconds:.0f} s"


def anomalies(args: argparse.Namespace) -> int:
    """The day's report (members over the daily anomaly threshold), once its midnight run has made it."""
    with _client(args) as client:
        report = client.anomaly_report(args.date)
    if args.json:  # points as JSON numbers, as the member's JSON has them (gRPC's JSON makes int64 a string)
        rows = [{"member_id": row.member_id, "day": row.day, "points": row.points,
                 "transactions": list(row.transactions)} for row in report.rows]
        print(json.dumps({"date": report.date or args.date, "rows": rows}, indent=2, ensure_ascii=False))
        return 0
    if not report.rows:
        print(f"no member crossed the daily anomaly threshold on {report.date or args.date}")
        return 0
    from cli.show import aligned

    rows = [("member", "day", "points", "transactions")]
    rows += [(row.member_id, row.day, f"{row.points:,}", " ".join(row.transactions)) for row in report.rows]
    print(aligned(rows, numeric={2}))
    return 0


def checkpoint(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _show(client.checkpoint())
    return 0


def status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _show(client.status())
    return 0


def import_members(args: argparse.Namespace) -> int:
    """0: every row is in; 3: the import finished with rejected rows (listed in the report)."""
    from actors.logs import collect_rarely
    from cli.importing import ImportOptions, run_import

    collect_rarely()  # the chunks in flight hold thousands of rows the collector would keep walking
    options = ImportOptions(file=args.file, format=args.format, report=args.report, progress=args.progress,
                            import_id=args.import_id or "", restart=args.restart, chunk=args.chunk,
                            in_flight=args.in_flight, retries=retries())
    state = run_import(_client(args), options, say=lambda text: print(text, file=sys.stderr))
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(state.rejected.items()))
    rejected = sum(state.rejected.values())
    report = args.report or args.file.with_name(args.file.name + ".rejected.csv")
    print(f"import {state.import_id}: {state.rows:,} rows: {state.imported:,} imported, "
          f"{state.imported_before:,} imported before (resumed), {rejected:,} rejected"
          + (f" ({reasons}); see {report}" if rejected else ""))
    return 3 if rejected else 0
