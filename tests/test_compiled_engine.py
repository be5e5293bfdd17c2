"""The compiled engine against its .py, the specification (setup.py, engine/__init__.py): replays
of generated streams under rule sets of different shapes write the same bytes, members, results,
ledger and anomaly reports, whether the engine runs compiled or pure (PATRON_PURE_ENGINE=1)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_invariants import EXAMPLE, changed
from tests.engines import engine_environment

RULE_SETS = {
    "example": EXAMPLE,
    "held": changed(EXAMPLE, ('action = "flag"', 'action = "hold"'), ("pending_days = 0", "pending_days = 3"),
                    ('rounding = "floor"', 'rounding = "carry"'),
                    ('multiplier_stacking = "max"', 'multiplier_stacking = "multiply"')),
    "blocked": changed(EXAMPLE, ('action = "flag"', 'action = "block_earn"'),
                       ("daily_points_threshold = 5000", "daily_points_threshold = 800"),
                       ('on_change = "upgrade_only"', 'on_change = "realtime"'),
                       ('rounding = "floor"', 'rounding = "half_up"')),
}
STREAMS = {"days": ["--transactions", "2500", "--members", "300", "--days", "40", "--seed", "5"],
           "spending": ["--transactions", "2500", "--members", "200", "--days", "20", "--seed", "11",
                        "--spending", "0.3"]}
OUTPUTS = ("members", "results", "ledger", "anomalies")

# Every replay in one process per engine: the outputs' hashes, and which engine ran, as JSON.
REPLAYS = """
import hashlib, json, sys
from pathlib import Path
import engine
from cli.main import main
from engine import scoring

def run(*argv):
    try:
        main(list(argv))
    except SystemExit as done:
        assert done.code == 0, argv

folder = Path(sys.argv[1])
cases = json.loads(sys.argv[2])
for name, args in cases["streams"].items():
    run("generate", "--out", str(folder / f"{name}.jsonl"), "--start", "2026-11-01", *args)
hashes = {}
for rules in cases["rules"]:
    for stream in cases["streams"]:
        out = {o: folder / f"{sys.argv[3]}-{rules}-{stream}-{o}.jsonl" for o in cases["outputs"]}
        run("replay", "--rules", str(folder / f"{rules}.toml"), "--transactions", str(folder / f"{stream}.jsonl"),
            "--members-out", str(out["members"]), "--results-out", str(out["results"]), "--ledger-out",
            str(out["ledger"]), "--anomalies-out", str(out["anomalies"]), "--until", "2027-01-02")
        for o, path in out.items():
            hashes[f"{rules} {stream} {o}"] = hashlib.sha256(path.read_bytes()).hexdigest()
compiled, why = engine.compiled_engine()
loaded = {name: module.__file__ for name, module in sys.modules.items() if name.startswith("engine.")}
print(json.dumps({"compiled": compiled, "why": why, "scoring": scoring.__file__, "loaded": loaded, "hashes": hashes}))
"""


def replays(folder: Path, pure: bool) -> dict:
    env = engine_environment(pure)
    cases = json.dumps({"rules": list(RULE_SETS), "streams": STREAMS, "outputs": OUTPUTS})
    done = subprocess.run([sys.executable, "-c", REPLAYS, str(folder), cases, "pure" if pure else "compiled"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("replays")
    for name, text in RULE_SETS.items():
        (folder / f"{name}.toml").write_text(text)
    return replays(folder, pure=False), replays(folder, pure=True)


def test_the_engine_runs_compiled_unless_asked_to_run_its_source(both):
    compiled, pure = both
    assert compiled["compiled"] is True, f"{compiled['why']}: make venv builds the engine again"
    assert not compiled["scoring"].endswith(".py")
    assert pure["compiled"] is False
    assert pure["scoring"].endswith("scoring.py")
    built = [name for name, path in compiled["loaded"].items() if not path.endswith(".py")]
    assert len(built) > 20, compiled["loaded"]  # every module with a build ran it, not only scoring
    assert all(pure["loaded"][name].endswith(".py") for name in built if name in pure["loaded"])


def test_no_compiled_engine_module_declares_a_struct():
    """setup.py leaves a module declaring a msgspec Struct pure (by a pattern of its text): every
    Struct must come from a module run as its .py, as msgspec has always read them."""
    import msgspec

    import engine
    compiled = [name for name, module in sys.modules.items()
                if name.startswith("engine.") and not (module.__file__ or "").endswith(".py")]
    assert compiled or not engine.compiled_engine()[0]
    for name in compiled:
        module = sys.modules[name]
        declared = [value for value in vars(module).values() if isinstance(value, type)
                    and issubclass(value, msgspec.Struct) and value.__module__ == name]
        assert not declared, f"{name} is compiled and declares {declared}"


def test_every_pxd_that_types_locals_cimports_cython():
    """Without `cimport cython` in a .pxd, Cython ignores its `@cython.locals` without a word
    (tiers.pxd's were, until the fourth round of scoring cuts): the locals stay generic."""
    root = Path(__file__).resolve().parents[1]
    for pxd in sorted(p for folder in ("engine", "actors", "storage") for p in (root / folder).rglob("*.pxd")):
        text = pxd.read_text()
        if "@cython." in text:
            assert re.search(r"^cimport cython\b", text, re.MULTILINE), f"{pxd.name}: add `cimport cython`"


def test_every_engine_class_compiled_is_final():
    """A cpdef method of a class that may be subclassed checks at each call for an override in
    Python (about 10 instructions); nothing subclasses the engine's classes, so each is declared
    `@cython.final` (scorecut9: 434 instructions a transaction of replay)."""
    root = Path(__file__).resolve().parents[1]
    for pxd in sorted((root / "engine").rglob("*.pxd")):
        text = pxd.read_text()
        for name in re.findall(r"^cdef class (\w+)", text, re.MULTILINE):
            assert re.search(rf"^@cython\.final\ncdef class {name}\b", text, re.MULTILINE), \
                f"{pxd.name}: declare {name} `@cython.final`"


def test_replays_compiled_and_pure_write_the_same_bytes(both):
    compiled, pure = both
    assert len(compiled["hashes"]) == len(RULE_SETS) * len(STREAMS) * len(OUTPUTS)
    assert len(set(compiled["hashes"].values())) > len(RULE_SETS) * len(STREAMS)  # the cases differ
    assert compiled["hashes"] == pure["hashes"]


ENGINE_STATE = """
import json, sys, engine, engine.scoring, engine.programme
built = [name for name, module in sys.modules.items()
         if name.startswith("engine.") and not module.__file__.endswith(".py")]
assert engine.compiled_engine()[0] or not built, built  # all compiled or all from their .py
print(json.dumps([*engine.compiled_engine(), engine.scoring.__file__]))
"""


def engine_state(tree: Path) -> tuple[bool, str, str]:
    """Which engine a copy of it at `tree` runs, and why, once its scoring is imported."""
    env = engine_environment(pure=False) | {"PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", ENGINE_STATE], capture_output=True, text=True, env=env,
                          cwd=tree, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    compiled, why, scoring = json.loads(done.stdout)
    return compiled, why, scoring


def test_an_edited_or_missing_typed_module_runs_the_whole_engine_from_its_py(tmp_path):
    """Compiled modules read the classes a .pxd declares as C structs: after a .pxd is edited, or
    when a typed module's build is missing, every module runs its .py (engine/__init__.py) and
    says which file is why, instead of failing to import."""
    import shutil

    import engine
    if not engine.compiled_engine()[0]:
        pytest.fail(f"{engine.compiled_engine()[1]}: make venv builds the engine again")
    shutil.copytree(Path(engine.__file__).parent, tmp_path / "engine")  # keeps each file's time
    here = tmp_path / "engine"
    assert engine_state(tmp_path)[:2] == (True, "")
    later = next(here.glob("lines.*.so")).stat().st_mtime + 10
    os.utime(here / "lines.pxd", (later, later))
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(here / "scoring.py"))
    assert "engine/lines.pxd" in why
    os.utime(here / "lines.pxd", (later - 20, later - 20))
    next(here.glob("programme.*.so")).unlink()
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(here / "scoring.py"))
    assert "engine/programme.py (no build)" in why


def test_a_struct_laid_out_otherwise_than_compiled_runs_the_whole_engine_from_its_py(tmp_path):
    """The build reads Transaction, LineItem, Member... as C structs (engine/record_fields.pxd): a
    field renamed (same size, other offsets) or added since the build is found at import, and
    every module, those the check itself loaded included, then runs its .py and says why."""
    import shutil

    import engine
    if not engine.compiled_engine()[0]:
        pytest.fail(f"{engine.compiled_engine()[1]}: make venv builds the engine again")
    shutil.copytree(Path(engine.__file__).parent, tmp_path / "engine")  # keeps each file's time
    structs = tmp_path / "engine" / "transactions.py"
    text = structs.read_text()
    structs.write_text(text.replace('    sku: str = ""\n', '    barcode: str = ""\n', 1))
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(tmp_path / "engine" / "scoring.py"))
    assert "engine.transactions.LineItem: no field sku" in why
    structs.write_text(text.replace('    coupon_code: str = ""\n\n\nclass TxnResult',
                                    '    coupon_code: str = ""\n    till: str = ""\n\n\nclass TxnResult', 1))
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(tmp_path / "engine" / "scoring.py"))
    assert re.search(r"engine\.transactions\.Transaction size changed.*Expected \d+ from C header, got \d+", why), why
    structs.write_text(text + "\nLineItem = dict  # noqa\n")
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(tmp_path / "engine" / "scoring.py"))
    assert "LineItem" in why, why
    structs.write_text(text)
    members = tmp_path / "engine" / "members.py"  # a member's profile, whose birthday earning reads
    members.write_text(members.read_text().replace('    birthday: str = ""\n', '    born: str = ""\n', 1))
    compiled, why, scoring = engine_state(tmp_path)
    assert (compiled, scoring) == (False, str(tmp_path / "engine" / "scoring.py"))
    assert "engine.members.Profile: no field birthday" in why, why


NONE_READ = """
import engine
from engine.filters import Matcher
from engine.rules import LineMatch
assert engine.compiled_engine()[0], engine.compiled_engine()
try:
    Matcher(LineMatch(sku=["a"])).matches(None)
except AttributeError:
    print("raised")
"""


def test_a_typed_reference_holding_none_raises_as_the_py_does_instead_of_crashing():
    """An engine bug that hands a typed reference None stays an AttributeError, which the shard
    turns into one rejected transaction, not a crash of the shard (setup.py: `nonecheck`)."""
    done = subprocess.run([sys.executable, "-c", NONE_READ], check=False, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent, env=engine_environment(pure=False))
    assert (done.returncode, done.stdout.strip()) == (0, "raised"), done.stderr[-2000:]


MADE_IN_C = """
import sys
import msgspec
import engine
from engine.record_fields import txn_record
from engine.transactions import TxnRecord
assert engine.compiled_engine()[0], engine.compiled_engine()
member = "".join(["m", "1"])  # an object of its own, whose references are counted below
cases = [(member, "purchase", 20517, 12, 3, "", 4), (member, "event", 20518, 0, 0, "capped", 5, 700),
         (member, "refund", 20519, -7, -2, "unknown_original", 6, 0, -900), (member, "purchase", 1, 2, 3, "x", 4, 5, 6)]
held = sys.getrefcount(member)
for args in cases:
    made, built = txn_record(*args), TxnRecord(*args)
    assert type(made) is TxnRecord, type(made)
    assert made == built, (made, built)
    assert msgspec.json.encode(made) == msgspec.json.encode(built), (made, built)
    assert made.member_id is member
    made.points = -1  # a field written as any other record's
    assert made != built
    del made, built
assert sys.getrefcount(member) == held, (sys.getrefcount(member), held)
defaults = [sys.getrefcount(value) for value in (0, -1, None)]  # the records' defaults, shared
made = [txn_record(*cases[0]) for _ in range(1000)]
del made
assert [sys.getrefcount(value) for value in (0, -1, None)] == defaults
print("same")
"""


def test_a_txn_record_made_in_c_is_the_one_its_constructor_makes():
    """Compiled, scoring makes its index records in C (record_fields.pxd, new_record), with
    TxnRecord's defaults written out there: each field, a default changed in transactions.py or a
    reference not counted, is what msgspec's own constructor gives."""
    done = subprocess.run([sys.executable, "-c", MADE_IN_C], check=False, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent, env=engine_environment(pure=False))
    assert (done.returncode, done.stdout.strip()) == (0, "same"), done.stderr[-2000:]


def test_a_txn_record_default_changed_in_python_is_told_where_c_writes_its_own():
    """new_record writes TxnRecord's defaults by hand (a reviewer): one changed in transactions.py
    only, or a field moved, is a layout problem, and the engine then runs from its .py files."""
    from engine.record_fields import defaults_problem
    from engine.transactions import TxnRecord

    fields, defaults = TxnRecord.__struct_fields__, TxnRecord.__struct_defaults__
    assert defaults_problem(fields, defaults) == ""
    assert "since_began" in defaults_problem(fields, (*defaults[:-3], -2, *defaults[-2:]))
    assert defaults_problem(fields, (*defaults[:-2], False, defaults[-1])) != ""  # False == 0, yet not an int
    assert defaults_problem((*fields[:-2], fields[-1], fields[-2]), defaults) != ""


INDEX_KEYS = """
import gc
import json
import engine
from tests.builders import book, buy, line, refund, score
target = book()
member = "".join(["M", "1"])  # made at run time, as a decoded id is
score(target, buy("T1", member, "2026-11-02 10:00", line(500)), refund("R1", member, "2026-11-02 11:00", "T1", 100))
keys = sorted(target.txns)
print(json.dumps({"compiled": engine.compiled_engine()[0], "keys": keys, "tracked": [gc.is_tracked(k) for k in keys]}))
"""


def test_the_index_keys_are_the_ids_and_compiled_kept_out_of_the_young_collections():
    """scoring._index_key: compiled, a transaction's index key is untracked by the cyclic collector
    as made (two str hold no reference), and the same pair as the .py's."""
    answers = {}
    for pure in (False, True):
        done = subprocess.run([sys.executable, "-c", INDEX_KEYS], check=False, capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).resolve().parent.parent, env=engine_environment(pure))
        assert done.returncode == 0, done.stderr[-2000:]
        answers[pure] = json.loads(done.stdout.splitlines()[-1])
    assert answers[False]["compiled"]
    assert not answers[True]["compiled"]
    assert answers[False]["keys"] == answers[True]["keys"] == [["M1", "R1"], ["M1", "T1"]]
    assert answers[False]["tracked"] == [False, False]
