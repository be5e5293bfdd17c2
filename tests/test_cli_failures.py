"""Every failure of the patron command is one clear line on stderr and a non-zero exit, never a
traceback: every command against a server that is not running, and bad local input."""

import argparse
import atexit
import json
import os
import socket
import subprocess
import sys

import pytest

from cli.main import _parser
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
    "midnight": ["midnight", "--date", "2026-12-01"],
    "member show": ["member", "show", "M1"],
    "member show --ledger": ["member", "show", "M1", "--ledger"],
    "member show --json": ["member", "show", "M1", "--ledger", "--json"],
    "member tag": ["member", "tag", "M1", "--add", "vip", "--reason", "a test"],
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


def test_a_retry_count_that_is_not_a_number_is_one_line():
    assert_one_clear_line(patron("member", "quote", "M1", "--line", "SKU-1:1:1000", "--address", DOWN,
                                 retries="many"), "PATRON_RETRIES", "'many'")


@pytest.mark.parametrize(("args", "words"), [
    (["replay", "--rules", str(EXAMPLE_RULES), "--transactions", "/no/such/file.jsonl", "--members-out", "{tmp}/m",
      "--results-out", "{tmp}/r"], ["/no/such/file.jsonl", "No such file"]),
    (["generate", "--out", "/no/such/folder/t.jsonl", "--transactions", "10"], ["/no/such/folder/t.jsonl"]),
    (["rules", "publish", "/no/such/rules.toml"], ["/no/such/rules.toml"]),
    (["restore", "--data", "{tmp}/data", "--checkpoint", "nightly"], ["no checkpoint 'nightly'"]),
    (["member", "quote", "M1", "--basket", "/no/such/basket.json"], ["/no/such/basket.json", "No such file"]),
    (["member", "quote", "M1", "--line", "SKU-1:two:1000"], ["--line 'SKU-1:two:1000'", "SKU:QTY:PRICE"]),
    (["member", "quote", "M1", "--basket", "{tmp}/bad.json"], ["bad.json", "not JSON"]),
    (["member", "quote", "M1", "--basket", "{tmp}/odd.json"], ["odd.json", "unknown field 'price'"]),
    (["member", "quote", "M1", "--basket", "{tmp}/typed.json"], ["typed.json"]),
    (["import", "/no/such/members.csv"], ["/no/such/members.csv", "No such file"]),
    (["import", "{tmp}/header.csv"], ["header.csv", "line 1 must name the columns, member_id among them"]),
    (["import", "{tmp}/members.txt"], ["members.txt", "--format csv or --format jsonl"]),
])
def test_bad_local_input_is_one_line_too(args, words, tmp_path):
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
    rules = tmp_path / "rules.toml"
    rules.write_text("no_such_key = 1\n" + EXAMPLE_RULES.read_text())
    done = patron("serve", "--data", str(tmp_path / "data"), "--rules", str(rules), "--grpc-port", "0",
                  "--metrics-port", "-1", timeout=60)
    assert done.returncode == 1
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["msg"] == "the rules file has problems"
    assert any("no_such_key" in problem for problem in line["problems"])
    assert not (tmp_path / "data").exists()
