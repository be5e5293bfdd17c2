"""Every failure of the patron command is one clear line on stderr and a non-zero exit, never a
traceback: every command against a server that is not running, and bad local input."""

import argparse
import atexit
import json
import os
import socket
import subprocess
import sys

import grpc
import pytest

from actors.routing import even_layout
from cli.main import _parser
from storage.folder import DataFolder
from tests.conftest import EXAMPLE_RULES


def held_closed_port() -> socket.socket:
    """A port bound and never listened on, held for the whole run: connecting is refused, and no
    server started later by another test can take it (a port freed at collection was once taken
    by the time these ran, and `send` waited on whatever answered there)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    return probe


_HELD = held_closed_port()
atexit.register(_HELD.close)
DOWN = f"127.0.0.1:{_HELD.getsockname()[1]}"

REMOTE = {
    "status": ["status"],
    "checkpoint": ["checkpoint"],
    "shards move": ["shards", "move", "3", "--to", "1"],
    "shards rebalance": ["shards", "rebalance", "--shards", "3"],
    "shards of": ["shards", "of", "M1"],
    "midnight": ["midnight", "--date", "2026-12-01"],
    "member show": ["member", "show", "M1"],
    "member show --ledger": ["member", "show", "M1", "--ledger"],
    "member show --json": ["member", "show", "M1", "--ledger", "--json"],
    "member tag": ["member", "tag", "M1", "--add", "vip", "--reason", "a test"],
    "member tier": ["member", "tier", "M1", "Gold", "--reason", "a test"],
    "member enroll": ["member", "enroll", "M1", "--channel", "pos"],
    "member status": ["member", "status", "M1", "freeze", "--reason", "a test"],
    "member adjust": ["member", "adjust", "M1", "--points", "-5", "--reason", "a test"],
    "anomalies": ["anomalies", "--date", "2026-12-01"],
    "anomalies --json": ["anomalies", "--date", "2026-12-01", "--json"],
    "member quote": ["member", "quote", "M1", "--line", "SKU-1:1:1000"],
    "member quote --basket": ["member", "quote", "M1", "--basket", "{basket}"],
    "member coupons": ["member", "coupons", "M1"],
    "member coupons --status": ["member", "coupons", "M1", "--status", "unused"],
    "send --generate": ["send", "--generate", "10"],
    "send --transactions": ["send", "--transactions", "{transactions}"],
    "rules publish": ["rules", "publish", str(EXAMPLE_RULES)],
    "events tail": ["events", "tail"],
    "import": ["import", "{members}", "--progress", "{members}.progress"],
}


def patron(*args: str, retries: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PATRON_RETRIES", None)
    if retries is not None:
        env["PATRON_RETRIES"] = retries
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env=env)


def assert_one_clear_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("patron: ")
    for word in words:
        assert word in lines[0]


def remote_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> set[str]:
    """Every command that takes --address, by its words."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= remote_commands(sub, (*path, name))
        elif "--address" in action.option_strings:
            found.add(" ".join(path))
    return found


def test_the_table_below_covers_every_command_that_talks_to_a_server():
    assert remote_commands(_parser()) == {name.split(" --")[0] for name in REMOTE}


@pytest.mark.parametrize("name", REMOTE)
def test_every_command_against_a_server_that_is_down_says_so_in_one_line(name, tmp_path):
    transactions = tmp_path / "t.jsonl"
    transactions.write_text('{"txn_id": "t1", "member_id": "M1", "occurred_at_ms": 1, "kind": "purchase"}\n')
    basket = tmp_path / "basket.json"
    basket.write_text('[{"sku": "SKU-1", "paid_minor": 1000}]')
    members = tmp_path / "members.csv"
    members.write_text("member_id,points\nM1,10\n")
    args = [word.format(transactions=transactions, basket=basket, members=members) for word in REMOTE[name]]
    # One command retries (as every command does by default, for about 10 s) to show that the
    # last retry still ends in one line; the others fail at once.
    retries = "2" if name == "send --transactions" else "0"
    assert_one_clear_line(patron(*args, "--address", DOWN, retries=retries), f"cannot reach patron at {DOWN}",
                          "patron serve")


def test_a_send_cut_short_says_how_far_it_got_and_that_the_same_command_sends_the_rest(tmp_path):
    """An outside probe killed the server under `send`, then re-ran it with another --batch-size:
    other batch ids, so the first send's rejections were scored again. Told only "cannot reach
    patron", it could not know the same command was the safe one."""
    transactions = tmp_path / "t.jsonl"
    transactions.write_text('{"txn_id": "t1", "member_id": "M1", "occurred_at_ms": 1, "kind": "purchase"}\n')
    done = patron("send", "--transactions", str(transactions), "--batch-size", "250", "--address", DOWN,
                  retries="0")
    assert_one_clear_line(done, f"cannot reach patron at {DOWN}", "0 transactions answered before this",
                          "the same command again, with the same file and --batch-size 250, sends the rest")


def test_a_send_interrupted_says_how_far_it_got_and_that_the_same_command_sends_the_rest(tmp_path):
    """Ctrl-C said only "interrupted" (an outside probe), where the batches in flight had the fate a
    failure's have. A listener that never answers holds the send until the interrupt. The send
    takes SIGINT as from a terminal: started in the background by a shell without job control (a
    CI's), a process inherits SIGINT ignored, and Python then leaves it so."""
    import select
    import signal

    transactions = tmp_path / "t.jsonl"
    transactions.write_text('{"txn_id": "t1", "member_id": "M1", "occurred_at_ms": 1, "kind": "purchase"}\n')
    with socket.create_server(("127.0.0.1", 0)) as mute:
        send = ["send", "--transactions", str(transactions), "--batch-size", "250",
                "--address", f"127.0.0.1:{mute.getsockname()[1]}"]
        sending = subprocess.Popen(
            [sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                                   "from cli.main import main; main(sys.argv[1:])", *send],
            stderr=subprocess.PIPE, text=True)
        try:
            assert select.select([mute], [], [], 60)[0], "send never connected"
            sending.send_signal(signal.SIGINT)
            _, stderr = sending.communicate(timeout=30)
        finally:
            sending.kill()
    assert sending.returncode == 130, stderr
    [line] = stderr.splitlines()
    assert line.startswith("patron: interrupted (0 transactions answered before this; the same command again, "
                           "with the same file and --batch-size 250, sends the rest")


def test_an_adjustment_that_failed_names_its_request_id_to_send_it_again():
    done = patron("member", "adjust", "M1", "--points", "5", "--reason", "a test", "--address", DOWN, retries="0")
    assert_one_clear_line(done, f"cannot reach patron at {DOWN}", "request id adj-", "give --request-id adj-")
    given = patron("member", "adjust", "M1", "--points", "5", "--reason", "a test", "--request-id", "adj-7",
                   "--address", DOWN, retries="0")
    assert_one_clear_line(given, "(request id adj-7; to send the same adjustment again, give --request-id adj-7")


def test_a_retry_count_that_is_not_a_number_is_one_line():
    assert_one_clear_line(patron("member", "quote", "M1", "--line", "SKU-1:1:1000", "--address", DOWN,
                                 retries="many"), "PATRON_RETRIES", "'many'")


@pytest.mark.parametrize(("args", "words"), [
    (["replay", "--rules", str(EXAMPLE_RULES), "--transactions", "/no/such/file.jsonl", "--members-out", "{tmp}/m",
      "--results-out", "{tmp}/r"], ["/no/such/file.jsonl", "No such file"]),
    (["generate", "--out", "/no/such/folder/t.jsonl", "--transactions", "10"], ["/no/such/folder/t.jsonl"]),
    (["rules", "publish", "/no/such/rules.toml"], ["/no/such/rules.toml"]),
    (["restore", "--data", "{tmp}/data", "--checkpoint", "nightly"], ["no checkpoint 'nightly'"]),
    (["restore", "--data", "{tmp}/nowhere", "--checkpoint", "nightly"], ["nowhere is not a data folder", "--data"]),
    (["member", "quote", "M1", "--basket", "/no/such/basket.json"], ["/no/such/basket.json", "No such file"]),
    (["member", "quote", "M1", "--basket", "{tmp}/bad.json"], ["bad.json", "not JSON"]),
    (["member", "quote", "M1", "--basket", "{tmp}/odd.json"], ["odd.json", "unknown field 'price'"]),
    (["member", "quote", "M1", "--basket", "{tmp}/typed.json"], ["typed.json"]),
    (["import", "/no/such/members.csv"], ["/no/such/members.csv", "No such file"]),
    (["import", "{tmp}/header.csv"], ["header.csv", "line 1 must name the columns, member_id among them"]),
    (["import", "{tmp}/members.txt"], ["members.txt", "--format csv or --format jsonl"]),
    (["import", "{tmp}/m.csv", "--progress", "{tmp}/odd.json"], ["odd.json", "not an import's progress",
                                                                  "--restart"]),
    (["rules", "publish", "{tmp}/latin1.toml"], ["latin1.toml", "not UTF-8 text", "0xe9"]),
    (["member", "quote", "M1", "--basket", "{tmp}/latin1.toml"], ["latin1.toml", "not UTF-8 text"]),
    (["member", "quote", "M1", "--basket", "{tmp}/many.json"], ["many.json", "lines[0].quantity", "10^15"]),
    (["shards", "of", "M1", ""], ["MEMBER_ID: expected 1 to 100 characters", "got ''"]),  # was "virtual shard 0"
])
def test_bad_local_input_is_one_line_too(args, words, tmp_path):
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    (tmp_path / "latin1.toml").write_bytes('programme = "Caf\u00e9"\n'.encode("latin-1"))
    (tmp_path / "m.csv").write_text("member_id\nM1\n")
    (tmp_path / "many.json").write_text('[{"sku": "S", "paid_minor": 5, "quantity": 100000000000000000000}]')
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "odd.json").write_text('[{"sku": "S", "price": 5}]')
    (tmp_path / "typed.json").write_text('{"lines": [{"sku": "S", "paid_minor": "a lot"}]}')
    (tmp_path / "header.csv").write_text("id,points\nM1,10\n")
    (tmp_path / "members.txt").write_text("member_id\nM1\n")
    assert_one_clear_line(patron(*[arg.format(tmp=tmp_path) for arg in args]), *words)


def test_a_served_data_folder_is_refused_with_one_json_line_from_serve(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "serve.pid").write_text(str(os.getppid()))  # a live process that is not this one
    done = patron("serve", "--data", str(data), "--rules", str(EXAMPLE_RULES), "--grpc-port", "0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["level"] == "error"
    assert f"is served by process {os.getppid()}" in line["msg"]


@pytest.mark.parametrize("flag", ["--grpc-port", "--metrics-port"])
def test_a_port_in_use_is_refused_before_anything_starts(flag, tmp_path):
    # gRPC's SO_REUSEPORT let a second serve share the port: the kernel split calls between folders
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        other = "--metrics-port" if flag == "--grpc-port" else "--grpc-port"
        done = patron("serve", "--data", str(tmp_path / "data"), flag, port, other, "0")
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["msg"] == f"{flag} {port}: 127.0.0.1:{port} is in use by another process (another patron serve?); " \
                          "stop it or choose another port"
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("args", "said"), [
    (["--host", "0.0.0.0"], "refusing to listen on 0.0.0.0 without authentication"),
    (["--tokens", "{tmp}/missing"], "missing"),
    (["--tls-cert", "{tmp}/missing.pem", "--tls-key", "{tmp}/key.pem"], "--tls-cert {tmp}/missing.pem: no such file")])
def test_what_serve_can_tell_at_once_is_told_before_ray_or_the_data_folder(args, said, tmp_path):
    done = patron("serve", "--data", str(tmp_path / "data"), "--grpc-port", "0",
                  *[arg.format(tmp=tmp_path) for arg in args])
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert said.format(tmp=tmp_path) in line["msg"]
    assert not (tmp_path / "data").exists()


def test_a_tls_key_that_is_not_the_certificates_is_named_before_ray_or_the_data_folder(tmp_path):
    # gRPC said only "Failed to bind", after Ray's start: an outside probe took it for a port in use
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    for name in ("a", "b"):
        subprocess.run([*openssl, "-keyout", str(tmp_path / f"{name}.key"), "-out", str(tmp_path / f"{name}.pem")],
                       check=True, capture_output=True, timeout=60)
    (tmp_path / "text.key").write_text("not a key\n")
    for key in ("b.key", "text.key"):
        done = patron("serve", "--data", str(tmp_path / "data"), "--grpc-port", "0", "--metrics-port", "-1",
                      "--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / key))
        assert done.returncode == 1
        [line] = [json.loads(line) for line in done.stderr.splitlines()]
        assert f"--tls-key {tmp_path / key}: not a PEM certificate and its private key" in line["msg"]
        assert not (tmp_path / "data").exists()


def test_a_gateway_per_node_without_a_cluster_is_refused_with_one_json_line(tmp_path):
    done = patron("serve", "--data", str(tmp_path / "data"), "--gateway-per-node")
    assert done.returncode == 2
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert "--gateway-per-node needs --ray-address" in line["msg"]
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_an_unreadable_rules_file_for_serve_is_a_json_line(tmp_path):
    done = patron("serve", "--data", str(tmp_path / "data"), "--rules", str(tmp_path / "missing.toml"),
                  "--grpc-port", "0", "--metrics-port", "-1")
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]  # refused before Ray starts
    assert line["level"] == "error"
    assert "missing.toml" in json.dumps(line)
    assert not (tmp_path / "data").exists()


def test_a_rules_file_with_problems_for_serve_lists_them_before_anything_starts(tmp_path):
    rules = tmp_path / "rules.toml"  # a new version's own checks too (an empty tier name): all at once
    rules.write_text("no_such_key = 1\n" + EXAMPLE_RULES.read_text().replace('name = "Gold"', 'name = ""', 1))
    done = patron("serve", "--data", str(tmp_path / "data"), "--rules", str(rules), "--grpc-port", "0",
                  "--metrics-port", "-1", timeout=60)
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["msg"] == "the rules file has problems"
    assert any("no_such_key" in problem for problem in line["problems"])
    assert any(problem.startswith("tiers[2].name: expected a non-empty name") for problem in line["problems"])
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["generate", "--out", "{tmp}/t.jsonl", "--start", "bogus"], ["--start", "YYYY-MM-DD", "'bogus'"]),
    (["generate", "--out", "{tmp}/t.jsonl", "--start", "2026-02-30"], ["--start", "'2026-02-30'"]),
    (["generate", "--out", "{tmp}/t.jsonl", "--members", "0"], ["--members", "1 or more", "'0'"]),
    (["generate", "--out", "{tmp}/t.jsonl", "--days", "-1"], ["--days", "1 or more"]),
    (["generate", "--out", "{tmp}/t.jsonl", "--transactions", "-1"], ["--transactions", "0 or more"]),
    # written, then every transaction rejected bad_timestamp (an outside probe)
    (["generate", "--out", "{tmp}/t.jsonl", "--start", "1999-12-30", "--days", "3"],
     ["--start and --days", "from 1999-12-30 to 2000-01-01", "2000-01-01 to 2100-12-31"]),
    (["generate", "--out", "{tmp}/t.jsonl", "--days", "100000"], ["--start and --days", "2000-01-01 to 2100-12-31"]),
    # the generator's day 2000-01-01 begins before 2000 in UTC: a third of the stream was rejected
    (["generate", "--out", "{tmp}/t.jsonl", "--start", "2000-01-01", "--days", "1"], ["(Asia/Shanghai)", "UTC"]),
    (["import", "{tmp}/m.csv", "--in-flight", "0", "--restart", "--address", "{down}"],
     ["--in-flight", "1 or more", "'0'"]),
    (["import", "{tmp}/m.csv", "--chunk", "10001", "--address", "{down}"], ["--chunk", "from 1 to 10,000"]),
    (["send", "--transactions", "{tmp}/m.csv", "--batch-size", "0", "--address", "{down}"],
     ["--batch-size", "from 1 to 10,000"]),
    (["send", "--generate", "-5", "--address", "{down}"], ["--generate", "1 or more"]),
    (["midnight", "--date", "2026-13-01", "--address", "{down}"], ["--date", "YYYY-MM-DD"]),
    (["events", "tail", "--count", "-1", "--address", "{down}"], ["--count", "0 or more"]),
    (["member", "quote", "M1", "--line", "SKU-1:x:5000", "--address", "{down}"],
     ["--line", "SKU:QTY:PRICE", "'SKU-1:x:5000'"]),
    (["member", "quote", "M1", "--line", "SKU-1", "--address", "{down}"], ["--line", "SKU:QTY:PRICE", "'SKU-1'"]),
    (["member", "quote", "M1", "--line", "a:1:99999999999999999999999", "--address", "{down}"],
     ["--line", "PRICE", "10^15", "'a:1:99999999999999999999999'"]),
    (["member", "quote", "M1", "--line", "a:1:-1000000000000001", "--address", "{down}"], ["--line", "PRICE", "10^15"]),
    (["member", "quote", "M1", "--line", "a:99999999999:5", "--address", "{down}"],
     ["--line", "QTY", "2,147,483,647", "'a:99999999999:5'"]),
    (["status", "--address", ""], ["--address", "HOST:PORT", "got ''"]),
    (["status", "--address", "127.0.0.1: 50051"], ["--address", "HOST:PORT"]),
    (["member", "show", "X", "--address", "127.0.0.1:99999"], ["--address", "HOST:PORT", "'127.0.0.1:99999'"]),
    (["status", "--address", "localhost:0"], ["--address", "HOST:PORT"]),  # retried for 10 s (a probe)
    (["serve", "--data", "{tmp}/data", "--grpc-port", "70000"], ["--grpc-port", "from 0 to 65535"]),
    (["serve", "--data", "{tmp}/data", "--metrics-port", "-2"], ["--metrics-port", "from -1 to 65535"]),
    (["serve", "--data", "{tmp}/data", "--shards", "-1"], ["--shards", "1 or more"]),
    (["serve", "--data", "{tmp}/data", "--shards", "0"], ["--shards", "1 or more"]),  # meant the default (a probe)
    (["send", "--generate", "0", "--address", "{down}"], ["--generate", "1 or more"]),  # it "sent 0" (a probe)
    (["serve", "--data", "{tmp}/data", "--host", ""], ["--host", "an address to listen on", "got ''"]),
    # an unset "$PATRON_DATA" served a data folder in the current one (a probe)
    (["serve", "--data", "", "--rules", "{tmp}/m.csv"], ["--data", "a file or folder's path", "got ''"]),
    (["replay", "--rules", "r", "--transactions", "t", "--members-out", " ", "--results-out", "r"],
     ["--members-out", "got ' '"]),
    (["shards", "move", "-1", "--to", "0", "--address", "{down}"], ["VSHARD", "0 or more", "'-1'"]),
    (["shards", "move", "3", "--to", "-1", "--address", "{down}"], ["--to", "0 or more"]),
    (["member", "adjust", "M1", "--points", "0", "--reason", "r", "--address", "{down}"], ["--points", "other than 0"]),
    (["member", "adjust", "M1", "--points", "1" + "0" * 20, "--reason", "r", "--address", "{down}"],
     ["--points", "10^15"]),
    # a script's unset "$ID" must not send the adjustment under a new id, a second time
    (["member", "adjust", "M1", "--points", "5", "--reason", "r", "--request-id", "", "--address", "{down}"],
     ["--request-id", "got ''"]),
])
def test_an_argument_out_of_its_range_is_a_usage_error_before_anything_starts(args, words, tmp_path):
    """argparse's usage and one `error:` line naming the argument, exit 2; never an error from deep
    inside the work (an IndexError after an import was done, gRPC's C-core log for an empty address)."""
    (tmp_path / "m.csv").write_text("member_id\nM1\n")
    done = patron(*[arg.format(tmp=tmp_path, down=DOWN) for arg in args])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "unexpected" not in done.stderr
    assert done.stderr.startswith("usage: patron ")
    [error] = [line for line in done.stderr.splitlines() if not line.startswith(" ") and "usage:" not in line]
    assert error.startswith("patron ")
    assert ": error: argument " in error
    for word in words:
        assert word in error
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "m.csv.import-progress").exists()


def test_the_rules_file_that_is_not_utf8_is_named_by_validate_and_replay(tmp_path):
    rules = tmp_path / "latin1.toml"
    rules.write_bytes('programme = "Caf\u00e9"\n'.encode("latin-1"))
    validated = patron("rules", "validate", str(rules))
    assert (validated.returncode, validated.stderr) == (
        1, f"{rules}: not UTF-8 text (byte 0xe9 at offset 16); save it as UTF-8\n")
    replayed = patron("replay", "--rules", str(rules), "--transactions", str(rules), "--members-out",
                      str(tmp_path / "m"), "--results-out", str(tmp_path / "r"))
    assert (replayed.returncode, replayed.stderr) == (1, validated.stderr)


def test_a_transactions_file_that_is_not_utf8_is_one_line_for_send_and_replay(tmp_path):
    """Not every line `malformed` and exit 0: the file is refused before anything is sent or written."""
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"txn_id": "t1"}\n\xff\xfe\x00binary\n')
    sent = patron("send", "--transactions", str(binary), "--address", DOWN, retries="0")
    assert_one_clear_line(sent, f"{binary}: not UTF-8 text (byte 0xff at offset 17)")
    replayed = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(binary), "--members-out",
                      str(tmp_path / "m"), "--results-out", str(tmp_path / "r"))
    assert_one_clear_line(replayed, f"{binary}: not UTF-8 text (byte 0xff at offset 17)")
    assert not (tmp_path / "r").exists()


def _purchase_line(txn_id: str) -> bytes:
    return json.dumps({"txn_id": txn_id, "member_id": "m1", "occurred_at_ms": 1_794_000_000_000, "kind": "purchase",
                       "amount_minor": 2900}).encode()


def test_lines_a_pipe_brings_that_cannot_be_read_are_malformed_and_the_rest_replayed(tmp_path):
    """A byte that is not UTF-8 inside a string, and a value nested a thousand deep, ended the whole
    replay with `unexpected UnicodeDecodeError` or `RecursionError`, the good lines lost (a probe)."""
    lines = [_purchase_line("t1"), b'{"txn_id": "bad' + bytes([0xFF]) + b'", "member_id": "m1"}',
             b'{"txn_id": "deep", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", _purchase_line("t2")]
    done = subprocess.run([sys.executable, "-m", "cli.main", "replay", "--rules", str(EXAMPLE_RULES), "--transactions",
                           "/dev/stdin", "--members-out", str(tmp_path / "m"), "--results-out", str(tmp_path / "r")],
                          input=b"\n".join(lines) + b"\n", capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answers = map(json.loads, (tmp_path / "r").read_text().splitlines())
    results = [(r["txn_id"], r["outcome"], r["reason"]) for r in answers]
    assert results == [("t1", "accepted", ""), ("", "rejected", "malformed"), ("", "rejected", "malformed"),
                       ("t2", "accepted", "")]
    assert b"Traceback" not in done.stderr


def test_more_malformed_lines_than_are_named_are_said_to_be_more(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(f'{{"txn_id": "x{n}", "kind": 7}}' for n in range(12)) + "\n")
    done = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(source), "--members-out",
                  str(tmp_path / "m"), "--results-out", str(tmp_path / "r"))
    said = done.stderr.splitlines()
    named = [line for line in said if line.startswith("replay: malformed")]
    assert named[-1].startswith("replay: malformed transaction 10:")
    assert "replay: more malformed lines; only the first 10 are named, the last line counts them all" in said
    assert said[-1].endswith("12 malformed")


@pytest.mark.parametrize("output", ["--results-out", "--members-out", "--ledger-out"])
def test_an_output_that_names_an_input_is_refused_and_the_input_kept(tmp_path, output):
    # an output over the transactions replayed 9 of 2,000 of them, exit 0, and the input was gone (a probe)
    source = tmp_path / "t.jsonl"
    source.write_bytes(_purchase_line("t1") + b"\n")
    outputs = {"--members-out": str(tmp_path / "m"), "--results-out": str(tmp_path / "r"), output: str(source)}
    done = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(source),
                  *[word for pair in outputs.items() for word in pair])
    assert_one_clear_line(done, f"{output} {source}: --transactions names that file too")
    assert source.read_bytes() == _purchase_line("t1") + b"\n"


def test_outputs_not_wanted_may_all_go_to_dev_null(tmp_path):
    # both outputs are required: /dev/null for each was refused as one file named twice (a review)
    source = tmp_path / "t.jsonl"
    source.write_bytes(_purchase_line("t1") + b"\n")
    done = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(source), "--members-out",
                  "/dev/null", "--results-out", "/dev/null")
    assert done.returncode == 0, done.stderr


def test_a_transactions_file_that_starts_with_a_byte_order_mark_replays_as_without_one(tmp_path):
    """As `import` reads its files: the mark made the first line `malformed` (an outside probe)."""
    from cli.inputs import BOM

    line = json.dumps({"txn_id": "t1", "member_id": "m1", "occurred_at_ms": 1_794_000_000_000, "kind": "purchase",
                       "amount_minor": 2900})
    results = []
    for name, head in (("plain", b""), ("marked", BOM)):
        (tmp_path / f"{name}.jsonl").write_bytes(head + line.encode() + b"\n")
        replayed = patron("replay", "--rules", str(EXAMPLE_RULES), "--transactions", str(tmp_path / f"{name}.jsonl"),
                          "--members-out", str(tmp_path / f"{name}.m"), "--results-out", str(tmp_path / f"{name}.r"))
        assert replayed.returncode == 0, replayed.stderr
        results.append((tmp_path / f"{name}.r").read_text())
    assert results[0] == results[1]
    assert json.loads(results[1])["outcome"] == "accepted"


def test_the_utf8_check_finds_the_offset_across_blocks_and_takes_characters_cut_by_them(tmp_path):
    from cli.inputs import utf8_file
    from engine.errors import PatronError

    text = tmp_path / "t.jsonl"
    text.write_text("caf\u00e9 \u4e2d\u6587\n" * 3, encoding="utf-8")
    for block in (1, 2, 3, 4, 7):  # every cut through the two- and three-byte characters
        utf8_file(text, block=block)
    text.write_bytes("caf\u00e9 \u4e2d".encode() + b"\xe9 latin-1\n")
    for block in (1, 2, 3, 5, 64):
        with pytest.raises(PatronError, match=r"byte 0xe9 at offset 9\)"):
            utf8_file(text, block=block)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 that is its own CA, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return (folder / "cert.pem").read_bytes(), (folder / "key.pem").read_bytes()


def refusal_of(server_tls: bool, client_tls: bool, self_signed: tuple[bytes, bytes],
               client_certificates: bool = False) -> str:
    """What the patron command says of a call from a client with or without TLS to a real gRPC
    server with or without it (asking for client certificates, or not)."""
    from concurrent import futures

    import grpc

    from cli.admin import rpc_failure

    certificate, key = self_signed
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.S", {"M": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")}),))
    if server_tls:
        credentials = grpc.ssl_server_credentials([(key, certificate)], root_certificates=certificate,
                                                  require_client_auth=client_certificates)
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(certificate)) if client_tls
               else grpc.insecure_channel(address))
    try:
        with channel, pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary("/t.S/M")(b"", timeout=10)
    finally:
        server.stop(None)
    return rpc_failure(refused.value, address)


def test_a_plain_client_of_a_tls_server_is_told_of_tls(self_signed, monkeypatch):
    monkeypatch.delenv("PATRON_TLS_CA", raising=False)
    said = refusal_of(server_tls=True, client_tls=False, self_signed=self_signed)
    assert "socket closed" in said
    assert "with TLS? then PATRON_TLS_CA names its CA's PEM file" in said


def test_a_tls_client_of_a_plain_server_is_told_the_handshake_failed(self_signed, monkeypatch):
    monkeypatch.setenv("PATRON_TLS_CA", "ca.pem")
    said = refusal_of(server_tls=False, client_tls=True, self_signed=self_signed)
    assert ": the TLS handshake failed (WRONG_VERSION_NUMBER) (is it serving TLS" in said
    assert "leave PATRON_TLS_CA unset" in said


def test_a_client_without_a_certificate_the_server_asks_for_is_told_of_client_certificates(self_signed,
                                                                                           monkeypatch):
    monkeypatch.setenv("PATRON_TLS_CA", "ca.pem")
    said = refusal_of(server_tls=True, client_tls=True, self_signed=self_signed, client_certificates=True)
    assert "asking for client certificates? then PATRON_TLS_CERT and PATRON_TLS_KEY name yours" in said


@pytest.mark.parametrize("given", ["PATRON_TLS_CERT", "PATRON_TLS_KEY", "an empty key", "empty both"])
def test_a_client_certificate_without_its_key_or_a_key_without_it_is_one_clear_line(given, tmp_path, monkeypatch):
    """One alone (or an empty file) made gRPC's core abort the command (SIGABRT, a C++ stack trace;
    an outside probe)."""
    pem, empty = tmp_path / "some.pem", tmp_path / "empty.pem"
    pem.write_text("not read: refused before\n")
    empty.write_text("")
    monkeypatch.setenv("PATRON_TLS_CA", str(pem))
    monkeypatch.delenv("PATRON_TLS_CERT", raising=False)
    monkeypatch.delenv("PATRON_TLS_KEY", raising=False)
    if given.startswith("empty") or given == "an empty key":
        monkeypatch.setenv("PATRON_TLS_CERT", str(empty if given == "empty both" else pem))
        monkeypatch.setenv("PATRON_TLS_KEY", str(empty))  # both empty: a handshake failing for no reason given
    else:
        monkeypatch.setenv(given, str(pem))
    done = patron("status", "--address", "127.0.0.1:1", retries="0")
    assert done.returncode == 1
    assert_one_clear_line(done, "PATRON_TLS_CERT and PATRON_TLS_KEY go together")


@pytest.mark.parametrize(("chain", "key"), [(b"cert", None), (None, b"key"), (b"cert", b"")])
def test_a_library_client_given_half_a_client_certificate_is_told_so(chain, key):
    from client import PatronClient

    with pytest.raises(ValueError, match="give certificate_chain and private_key together"):
        PatronClient("127.0.0.1:1", root_certificates=b"ca", certificate_chain=chain, private_key=key)


def test_a_server_that_is_not_there_is_not_said_to_be_a_tls_problem():
    from cli.admin import rpc_failure
    from client import PatronClient

    with PatronClient(DOWN, retries=0) as client, pytest.raises(Exception) as refused:  # noqa: PT011
        client.status()
    said = rpc_failure(refused.value, DOWN)
    assert said.startswith(f"cannot reach patron at {DOWN}: ")
    assert "is `patron serve` running there?" in said
    assert "TLS" not in said


def test_commands_that_fail_on_a_folder_leave_it_as_it_was(tmp_path):
    # an outside probe: a restore of an unknown checkpoint made rules/, reports/ and shards/, and
    # serve without --rules said so only after Ray had started, leaving a new folder behind
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    assert_one_clear_line(patron("restore", "--data", str(tmp_path / "data"), "--checkpoint", "nightly"),
                          "no checkpoint 'nightly'", "there are: none")
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["checkpoints"]
    served = patron("serve", "--data", str(tmp_path / "new"), "--grpc-port", "0", "--metrics-port", "-1")
    [line] = served.stderr.splitlines()  # serve's log: JSON lines
    assert (served.returncode, json.loads(line)["msg"]) == (1, f"{tmp_path / 'new'} has no rules yet: start with "
                                                               f"--rules FILE")
    assert not (tmp_path / "new").exists()


def test_a_message_of_several_lines_is_one_line_whose_parts_stay_apart(capsys):
    """A server's rules problems come one a line: run together by spaces, a problem's end read as
    the next one's start (an outside probe)."""
    from cli.main import _fail

    args = argparse.Namespace(run=None)
    assert _fail(args, "INVALID_ARGUMENT: tags[0].name: expected a name\ntiers[1].name:  expected   one\n") == 1
    assert capsys.readouterr().err == (
        "patron: INVALID_ARGUMENT: tags[0].name: expected a name; tiers[1].name: expected one\n")


def test_a_restore_of_a_clusters_folder_is_refused_and_changes_nothing(tmp_path):
    # its shards live on the nodes: it said "restored" and every shard kept what came after (an outside probe)
    from storage.folder import DataFolder, Layout

    folder = DataFolder(tmp_path / "data")
    folder.save_layout(Layout(2, 4, [0, 1, 0, 1], nodes={"0": "a", "1": "b"}, folder_id="f1"))
    (folder.checkpoints / "nightly").mkdir()
    (folder.checkpoints / "nightly" / "manifest.json").write_text("{}")
    before = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "data").rglob("*"))
    assert_one_clear_line(patron("restore", "--data", str(tmp_path / "data"), "--checkpoint", "nightly"),
                          "shards live on the nodes of a Ray cluster", "PATRON_NODE_DATA/f1/shards",
                          "nothing was changed")
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "data").rglob("*")) == before


@pytest.mark.parametrize(("holds", "said"), [
    (["notes.txt", "sub/"], "holds files that are not patron's (notes.txt, sub): give --data a new or empty folder"),
    (["manifest.json", "layout.json", "rules/", "shards/"], "is a checkpoint, not a data folder: serving it would "
                                                             "change it; restore it into a data folder"),
])
def test_a_folder_that_is_not_a_data_folder_is_refused_before_anything_is_written_in_it(holds, said, tmp_path):
    """`--data /etc` served, filling /etc with patron's files; a checkpoint's folder served took
    transactions into the checkpoint (an outside probe)."""
    folder = tmp_path / "folder"
    for name in holds:
        (folder / name.rstrip("/")).mkdir(parents=True) if name.endswith("/") else (
            folder.mkdir(exist_ok=True), (folder / name).write_text("{}"))
    before = sorted(p.name for p in folder.iterdir())
    done = patron("serve", "--data", str(folder), "--rules", str(EXAMPLE_RULES), "--grpc-port", "0",
                  "--metrics-port", "0")
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert said in line["msg"]
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize("under", ["", "sub", "sub/deeper"])
def test_a_data_folder_that_is_a_file_or_inside_one_is_refused_in_one_line(tmp_path, under):
    """It failed deep in the start: "…/afile/shards: Not a directory", and later still for a
    folder inside the file (an outside probe)."""
    (tmp_path / "afile").write_text("notes")
    data = tmp_path / "afile" / under if under else tmp_path / "afile"
    done = patron("serve", "--data", str(data), "--rules", str(EXAMPLE_RULES), "--grpc-port", "0",
                  "--metrics-port", "0")
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    named = f"{data}: " if under else ""
    assert line["msg"].startswith(f"{named}{tmp_path / 'afile'} is a file, not a folder: give --data a new or empty")
    assert (tmp_path / "afile").read_text() == "notes"


def test_other_shards_than_a_folders_are_refused_before_anything_starts(tmp_path):
    """Said after Ray's start, 14-20 s later (an outside probe); now before anything is written."""
    folder = tmp_path / "data"
    folder.mkdir()
    DataFolder(folder).save_layout(even_layout(4))
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    done = patron("serve", "--data", str(folder), "--rules", str(EXAMPLE_RULES), "--shards", "2",
                  "--grpc-port", "0", "--metrics-port", "0")
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["msg"] == (f"{folder} has 4 shards; start without --shards, and add shards with patron shards "
                           f"rebalance --shards N while it serves")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before


def test_a_client_ca_without_a_server_certificate_is_refused(tmp_path):
    """It served in plain text, asking no client for a certificate (an outside probe)."""
    (tmp_path / "ca.pem").write_text("")
    done = patron("serve", "--data", str(tmp_path / "data"), "--tls-client-ca", str(tmp_path / "ca.pem"))
    assert done.returncode == 2
    assert "--tls-client-ca needs --tls-cert and --tls-key" in done.stderr
    assert not (tmp_path / "data").exists()


def test_one_port_for_grpc_and_metrics_is_refused_before_anything_starts(tmp_path):
    """It was refused once Ray and the shards had started (an outside probe)."""
    done = patron("serve", "--data", str(tmp_path / "data"), "--grpc-port", "50163", "--metrics-port", "50163")
    assert done.returncode == 2
    assert "--metrics-port and --grpc-port are both 50163: give each its own port" in done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("token", ["admin-token-0123456789\r", "admin-tökén-0123456789"])
def test_a_token_no_client_can_send_is_one_clear_line(token, monkeypatch):
    """A PATRON_TOKEN from a file saved with Windows line endings (or with a letter outside ASCII)
    printed gRPC's core trace, then `INTERNAL: Invalid metadata`, naming no variable (an outside probe)."""
    from client import PatronClient

    monkeypatch.setenv("PATRON_TOKEN", token)
    done = patron("status", "--address", "127.0.0.1:1", retries="0")
    assert done.returncode == 1
    assert_one_clear_line(done, "PATRON_TOKEN: a bearer token is printable ASCII without spaces")
    with pytest.raises(ValueError, match="a bearer token is printable ASCII without spaces"):
        PatronClient("127.0.0.1:1", token=token)


def test_a_library_client_given_a_client_certificate_without_roots_speaks_tls(tmp_path):
    """It built a plaintext channel and sent the bearer token in clear (an outside probe): a server
    that listens in plaintext now sees a TLS hello, which it cannot read."""
    import threading

    from client import PatronClient

    key, chain = tmp_path / "client.key", tmp_path / "client.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(chain),
                    "-days", "2", "-subj", "/CN=a till"], check=True, capture_output=True, timeout=60)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        received: list[bytes] = []

        def first_bytes() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(10)
                received.append(connection.recv(64))

        reader = threading.Thread(target=first_bytes, daemon=True)
        reader.start()
        with PatronClient(f"127.0.0.1:{listener.getsockname()[1]}", token="secret-token-0123456789", retries=0,
                          timeout=2, certificate_chain=chain.read_bytes(), private_key=key.read_bytes()) as client, \
                pytest.raises(grpc.RpcError):
            client.status()
        reader.join(10)
    assert received
    assert received[0][:1] == b"\x16"  # a TLS handshake record, not HTTP/2's preface
    assert b"secret-token" not in received[0]
