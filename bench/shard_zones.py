"""bench/shard_writes.py with each step of a write in a C frame of its own, so that callgrind's
inclusive cost of `zone_STEP` is that step's instructions, Python frames and all (Python functions
have no frames callgrind can see; ctypes callbacks do not work either: callgrind loses the frame
inside libffi). The frames come from a tiny CPython extension compiled with gcc into a temporary
folder; each wraps the step's function for this run only. The compiled engine's
`score_transaction` and the part reader are C functions already.

    PYTHONPATH=TREE valgrind --tool=callgrind .venv/bin/python bench/shard_zones.py [--fine] \\
        TREE/bench/shard_writes.py RULES STREAM --first 200 --rest 800 --wire
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 callgrind.out.PID | grep zone_

A frame costs about 1,000–2,000 instructions a call: the steps run once a write cost nothing
measurable, the two run once a transaction (`index_get`, `index_set`) about 4,500 a transaction
together; `--fine` adds frames inside the commit and the answers (more of their own cost)."""

import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

STEPS = {  # frame: (module, attribute path)
    "read": ("actors.grouping", "transactions_of"), "answers": ("actors.grouping", "_answers"),
    "decode": ("actors.grouping", "_decode_part"), "stats": ("actors.shard", "count_batch"),
    "writeout": ("actors.shard", "Shard._write_out"), "apply_counted": ("actors.shard", "Shard.apply_counted"),
    "write_with": ("actors.shard", "Shard._write_with"), "apply_group": ("actors.shard", "apply_group"),
    "commit": ("storage.shard_store", "BatchWriter.commit"),
    "ledger_and_members": ("storage.shard_store", "BatchWriter._write_ledger_and_members"),
    "put_members": ("storage.shard_store", "BatchWriter.put_members"),
    "begin": ("storage.shard_store", "ShardStore.writer"), "index_get": ("storage.shard_store", "BatchWriter.get"),
    "index_set": ("storage.shard_store", "BatchWriter.__setitem__"),
    "prepare": ("actors.shard", "ShardCoupons.prepare"), "settle": ("actors.hot_members", "HotMembers.settle"),
}
FINE = {
    "ledger_rows": ("storage.shard_store", "ledger_rows"), "txn_key": ("storage.shard_store", "txn_key"),
    "count_ledger": ("actors.batch_stats", "count_ledger"), "result_entries": ("actors.grouping", "result_entries"),
    # the commit's rows packed by storage/commit_rows.py (compiled: storage/row_packer.pyx), where the tree has it
    "newest_heads": ("storage.shard_store", "newest_heads"),
    "chained_ledger_rows": ("storage.shard_store", "chained_ledger_rows"),  # the two above in one loop
    "member_rows": ("storage.shard_store", "member_rows"), "index_rows": ("storage.shard_store", "index_rows"),
}
"""A zone whose function the tree lacks (an older or newer tree's) is left out."""
MADE = {"index_get": "get", "index_set": "__setitem__"}
"""Zones on the methods of what `storage.shard_store.IndexLookups` makes, where the tree has it: the
object the engine's Book looks transactions up in (compiled: its methods cannot be replaced, so
each one made is wrapped; the wrapper's own frame falls outside the zones, as the lambdas above do)."""
_SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define ZONE(name) \
  __attribute__((noinline)) static PyObject *zone_##name(PyObject *fn, PyObject *args, PyObject *kw) { \
    PyObject *result = PyObject_Call(fn, args, kw); __asm__ volatile(""); return result; } \
  static PyObject *call_##name(PyObject *self, PyObject *args, PyObject *kw) { \
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args)); \
    PyObject *result = rest ? zone_##name(PyTuple_GET_ITEM(args, 0), rest, kw) : NULL; \
    Py_XDECREF(rest); return result; }
#define METHOD(name) {#name, (PyCFunction)(void(*)(void))call_##name, METH_VARARGS | METH_KEYWORDS, NULL},
ZONES(ZONE)
static PyMethodDef methods[] = { ZONES(METHOD) {NULL, NULL, 0, NULL} };
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "shard_zones_c", NULL, -1, methods};
PyMODINIT_FUNC PyInit_shard_zones_c(void) { return PyModule_Create(&module); }
"""


def _frames(names: list[str]) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="shard-zones-"))
    zones = " ".join(f"X({name})" for name in names)
    (folder / "zones.c").write_text(f"#define ZONES(X) {zones}\n{_SOURCE}")
    target = folder / f"shard_zones_c{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["gcc", "-O1", "-g", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}", "-o",
                    str(target), str(folder / "zones.c")], check=True)
    sys.path.insert(0, str(folder))
    import shard_zones_c
    sys.path.remove(str(folder))
    shutil.rmtree(folder)  # loaded: the mapping outlives the file
    return shard_zones_c


def _wrap(frame: Any, module: str, path: str) -> None:
    owner: Any = __import__(module, fromlist=["_"])
    *outer, name = path.split(".")
    for part in outer:
        owner = getattr(owner, part)
    function = getattr(owner, name, None)
    if function is None:  # renamed or gone on this branch: its zone stays empty, so say so
        print(f"shard_zones: no {module}.{path}: zone skipped", file=sys.stderr)
        return
    setattr(owner, name, lambda *args, **kwargs: frame(function, *args, **kwargs))


def _wrap_made(frames: Any) -> bool:
    """The index lookups' zones on what `IndexLookups` makes; False when the tree has none."""
    import storage.shard_store as module
    make = getattr(module, "IndexLookups", None)
    if make is None:
        return False
    zones = {method: getattr(frames, name) for name, method in MADE.items()}

    class Zoned:
        def __init__(self, *args: Any) -> None:
            self.made = made = make(*args)
            self.index, self.keys = made.index, made.keys
            self.get_frame, self.set_frame = zones["get"], zones["__setitem__"]

        def get(self, key: Any, default: Any = None) -> Any:
            return self.get_frame(self.made.get, key, default)

        def __setitem__(self, key: Any, record: Any) -> None:
            self.set_frame(self.made.__setitem__, key, record)

    module.IndexLookups = Zoned  # type: ignore[attr-defined,misc]
    return True


def main() -> None:
    fine = "--fine" in sys.argv[1:2]
    steps = {**STEPS, **FINE} if fine else STEPS
    frames = _frames(list(steps))
    made = _wrap_made(frames)
    for name, (module, path) in steps.items():
        if not (made and name in MADE):
            _wrap(getattr(frames, name), module, path)
    sys.argv = sys.argv[2:] if fine else sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
