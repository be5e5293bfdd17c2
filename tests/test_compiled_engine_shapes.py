"""The compiled engine against its .py on rules of every shape (issue 15 item 5): hypothesis
draws a programme (rounding, per-order points, pending days, stacking, expiry, growth source,
filters, anomaly action and threshold, tier policy, each tier's metric, window, validity and
effect, negative balances, redemption days) and a stream of every kind over weeks, and the same
replay, run compiled here and pure in a second process (PATRON_PURE_ENGINE=1), must write the
same members, results, ledger and anomaly report, byte for byte."""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from cli.replay import ReplayFiles, replay_files
from engine.programme import Programme
from engine.validation import load_rules
from tests.engine.test_invariants import EXAMPLE, HOURS, line_items
from tests.engine.test_invariants import streams as invariant_streams

DAY_MS = 86_400_000
OUTPUTS = ("members", "results", "ledger", "anomalies")

# Each shape: the ways a programme may differ from the example there, as (text, replacement)
# pairs; the first way is the example's own.
SHAPES: list[list[tuple[tuple[str, str], ...]]] = [
    [(), (('rounding = "floor"', 'rounding = "half_up"'),), (('rounding = "floor"', 'rounding = "carry"'),)],
    [(), (("per_order = 0 ", "per_order = 7 "),)],
    [(), (("pending_days = 0", "pending_days = 2"),)],
    [(), (('multiplier_stacking = "max"', 'multiplier_stacking = "multiply"'),)],
    [(), (('policy = "jan1_after_years"', 'policy = "never"'), ("\nyears = 1 ", "\n# years = 1 ")),
     (('policy = "jan1_after_years"', 'policy = "rolling_days"'), ("\nyears = 1 ", "\n# years = 1 "),
      ("# days = 365 ", "days = 20 ")),
     (('policy = "jan1_after_years"', 'policy = "annual_reset"'), ("\nyears = 1 ", "\n# years = 1 "))],
    [(), (('source = "points"                   #', 'source = "spend"  #'), ("per_point = 1 ", "# per_point = 1 "),
          ('# unit_minor = 1000                 # with source = "spend"', "unit_minor = 1000"),
          ("# per_unit = 10", "per_unit = 10")),
     (("per_point = 1 ", "per_point = 4 "),)],  # growth no longer equals points: lifetime sums told apart
    [(), (("promotional_lines_earn = true", "promotional_lines_earn = false"),)],
    [(), (("member_discounted_lines_earn = true", "member_discounted_lines_earn = false"),)],
    [(), (("no_barcode_lines_earn = false", "no_barcode_lines_earn = true"),)],
    [(), (("only matching lines earn\nsku = []", 'only matching lines earn\nsku = ["S1", "TEA-PROMO"]'),)],
    [(), (('action = "flag"', 'action = "block_earn"'),), (('action = "flag"', 'action = "hold"'),),
     (('action = "flag"', 'action = "block_earn_and_redeem"'),)],
    [(), (("daily_points_threshold = 5000", "daily_points_threshold = 300"),)],
    [(), (('on_change = "upgrade_only"', 'on_change = "realtime"'),),
     (('on_change = "upgrade_only"', 'on_change = "batch"'),)],
    [(), (('on_expiry = "reevaluate"', 'on_expiry = "since_upgrade"'),)],
    [(), (('periodic = "none"', 'periodic = "monthly"'),), (('periodic = "none"', 'periodic = "quarterly"'),)],
    [(), (("reset_growth_on_upgrade = false", "reset_growth_on_upgrade = true"),)],
    [(), (('metric = "growth"', 'metric = "points"'),), (('metric = "growth"', 'metric = "spend"'),),
     (('metric = "growth"', 'metric = "recharge"'),), (('metric = "growth"', 'metric = "single_purchase"'),)],
    [(), (('window = "lifetime"', 'window = "2 months"'),), (('window = "lifetime"', 'window = "45 days"'),)],
    [(), (("threshold = 10000\n", "threshold = 300\n"),)],
    [(), (("threshold = 1000000                 #", "threshold = 30000  #"),)],
    [(), (('validity = "12 months"', 'validity = "40 days"'),),
     (('validity = "12 months"', 'validity = "2 months end_of_month"'),)],
    [(), (('effective = "immediate"', 'effective = "next_day"'),)],
    [(), (("earns_points = true", "earns_points = false"),)],
    [(), (("allow_negative_points = true", "allow_negative_points = false"),)],
    [(), (("weekdays = []                       #", 'weekdays = ["mon", "thu", "sat"]  #'),)],
    [(), (("recency_days = 90 ", "recency_days = 3 "),
          ('window = "3 months"                 # ...in', 'window = "45 days"  # ...in'),
          ('spend_minor = 500000\nwindow = "12 months"', 'spend_minor = 500000\nwindow = "lifetime"'))],
]

WORKER = """
import json, sys
from pathlib import Path
import engine
from tests.test_compiled_engine_shapes import replay
print(json.dumps(engine.compiled_engine()), flush=True)
for line in sys.stdin:
    folder, until = json.loads(line)
    print(json.dumps(replay(Path(folder), until, "pure")), flush=True)
"""

def apply(text: str, ways: tuple[tuple[str, str], ...]) -> str:
    for old, new in ways:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def programme(ways: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    text = EXAMPLE
    for way in ways:
        text = apply(text, way)
    return text


# A falsifying example names only the ways a programme differs from the example.
programmes = st.tuples(*(st.sampled_from(shape) for shape in SHAPES)).map(lambda ways: tuple(w for w in ways if w))


# Amounts that cross the example's thresholds (tiers, anomaly, coupons) as often as not.
paid = st.one_of(st.sampled_from([0, 150, 1_000, 9_999, 50_000, 120_000, 300_000]), st.integers(0, 300_000))


# Every kind, for three members, over hours or weeks at a time: windows, expiry and validity come
# into play as midnights pass.
streams = partial(invariant_streams, gaps=st.one_of(HOURS, st.integers(DAY_MS, 45 * DAY_MS)), purchases=8,
                  basket=line_items(paid))


class PureEngine:
    """A second process running the engine's .py: replays a folder as the test process does."""

    def __init__(self) -> None:
        env = {**os.environ, "PATRON_PURE_ENGINE": "1"}
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        self.compiled = json.loads(self.process.stdout.readline())[0]

    def replay(self, folder: Path, until: int) -> str:
        self.process.stdin.write(json.dumps([str(folder), until]) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def pure() -> Iterator[PureEngine]:
    worker = PureEngine()
    yield worker
    worker.close()


def replay(folder: Path, until: int, side: str) -> str:
    """`patron replay` of the folder's rules and stream into `side`-named outputs: what failed, if anything."""
    out = {o: folder / f"{side}-{o}.jsonl" for o in OUTPUTS}
    try:
        replay_files(ReplayFiles(rules=folder / "rules.toml", transactions=folder / "stream.jsonl",
                                 members_out=out["members"], results_out=out["results"],
                                 ledger_out=out["ledger"], anomalies_out=out["anomalies"], until=until))
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return ""


def test_both_engines_are_the_ones_compared(pure):
    assert engine.compiled_engine()[0], f"{engine.compiled_engine()[1]}: make venv builds the engine again"
    assert pure.compiled is False


# Drawn afresh each run (no example database): each run tries programmes the last did not.
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(differences=programmes, txns=streams())
def test_compiled_and_pure_replays_agree_on_rules_of_every_shape(pure, differences, txns):
    rules = programme(differences)
    until = Programme(load_rules(rules)).calendar.day_of(txns[-1].occurred_at_ms) + 60  # expiry, validity
    with tempfile.TemporaryDirectory(prefix="shapes-") as name:
        folder = Path(name)
        (folder / "rules.toml").write_text(rules)
        (folder / "stream.jsonl").write_bytes(msgspec.json.Encoder().encode_lines(txns))
        assert replay(folder, until, "compiled") == pure.replay(folder, until)
        for output in OUTPUTS:
            here, there = (folder / f"{side}-{output}.jsonl" for side in ("compiled", "pure"))
            if here.exists() or there.exists():
                assert here.read_bytes().splitlines() == there.read_bytes().splitlines(), output


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(differences=programmes, txns=streams())
def test_a_replay_that_writes_no_ledger_ends_the_same(differences, txns):
    """Without `--ledger-out` the book keeps no ledger entries nor notices (`Book.keep_outputs`):
    members, results and the anomaly report are those of a replay that writes its ledger. (The
    compiled engine both times: what this module compares with the pure one is the other test.)"""
    rules = programme(differences)
    until = Programme(load_rules(rules)).calendar.day_of(txns[-1].occurred_at_ms) + 60
    with tempfile.TemporaryDirectory(prefix="outputs-") as name:
        folder = Path(name)
        (folder / "rules.toml").write_text(rules)
        (folder / "stream.jsonl").write_bytes(msgspec.json.Encoder().encode_lines(txns))
        assert replay(folder, until, "ledger") == ""
        bare = {o: folder / f"bare-{o}.jsonl" for o in OUTPUTS}
        replay_files(ReplayFiles(rules=folder / "rules.toml", transactions=folder / "stream.jsonl",
                                 members_out=bare["members"], results_out=bare["results"],
                                 anomalies_out=bare["anomalies"], until=until))
        assert not bare["ledger"].exists()
        for output in ("members", "results", "anomalies"):
            assert bare[output].read_bytes() == (folder / f"ledger-{output}.jsonl").read_bytes(), output
