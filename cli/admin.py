"""The operator commands that talk to a running patron over gRPC."""

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from client import PatronClient

__all__ = ["checkpoint", "member_show", "member_tag", "midnight", "publish", "send", "status"]

DEFAULT_ADDRESS = os.environ.get("PATRON_ADDRESS", "127.0.0.1:50051")


def _client(args: argparse.Namespace) -> PatronClient:
    """PATRON_TOKEN is sent as the bearer token; PATRON_TLS_CA (a PEM file) turns on TLS, with
    PATRON_TLS_CERT and PATRON_TLS_KEY for a client certificate."""
    def pem(name: str) -> bytes | None:
        path = os.environ.get(name)
        return Path(path).read_bytes() if path else None

    return PatronClient(args.address, token=os.environ.get("PATRON_TOKEN") or None,
                        root_certificates=pem("PATRON_TLS_CA"), certificate_chain=pem("PATRON_TLS_CERT"),
                        private_key=pem("PATRON_TLS_KEY"))


def _show(message: object) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2, ensure_ascii=False))


def _failed(error: grpc.RpcError) -> int:
    print(f"patron: {error.code().name}: {error.details()}", file=sys.stderr)
    return 1


def send(args: argparse.Namespace) -> int:
    """Stream transactions (a JSONL file, or a generated workload dated today)."""
    from bench.workload import Workload, generate

    with _client(args) as client:
        if args.transactions:
            source = _jsonl(args.transactions)
        else:
            today = client.status().shards[0].business_day
            run = int(time.time())
            source = generate(Workload(transactions=args.generate, members=max(args.generate // 10, 100), days=1,
                                       start=today, seed=run, id_prefix=f"S{run}-"))
        counts: dict[str, int] = {}
        started, sent = time.perf_counter(), 0
        try:
            for ack in client.stream(client.batches(source, args.batch_size)):
                sent += len(ack.results)
                for result in ack.results:
                    word = grpc_outcome(result.outcome) + (f" ({result.reason})" if result.reason else "")
                    counts[word] = counts.get(word, 0) + 1
        except grpc.RpcError as error:
            return _failed(error)
    seconds = time.perf_counter() - started
    print(f"sent {sent:,} transactions in {seconds:.1f} s ({sent / seconds:,.0f}/s): "
          + ", ".join(f"{n:,} {word}" for word, n in sorted(counts.items())))
    return 0


def _jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def grpc_outcome(value: int) -> str:
    from proto import patron_pb2 as pb

    return pb.Outcome.Name(value).removeprefix("OUTCOME_").lower()


def member_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            member = client.member(args.member_id)
            if member is None:
                print(f"patron: no member {args.member_id!r}", file=sys.stderr)
                return 1
            _show(member)
            if args.ledger:
                for entry in client.ledger(args.member_id):
                    print(json.dumps(MessageToDict(entry, preserving_proto_field_name=True), ensure_ascii=False))
        except grpc.RpcError as error:
            return _failed(error)
    return 0


def member_tag(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            _show(client.set_tags(args.member_id, args.add, args.remove, args.reason))
        except grpc.RpcError as error:
            return _failed(error)
    return 0


def publish(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            answer = client.publish_rules(Path(args.file).read_text(encoding="utf-8"), args.count_past_spend)
        except grpc.RpcError as error:
            return _failed(error)
    print(f"published rules version {answer.version}"
          + ("; every member is being re-evaluated (see `patron status`)" if answer.reevaluating else ""))
    return 0


def midnight(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            _show(client.run_midnight(args.date))
        except grpc.RpcError as error:
            return _failed(error)
    return 0


def checkpoint(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            _show(client.checkpoint())
        except grpc.RpcError as error:
            return _failed(error)
    return 0


def status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            _show(client.status())
        except grpc.RpcError as error:
            return _failed(error)
    return 0
