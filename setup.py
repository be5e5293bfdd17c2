"""The compiled code, built by every `pip install`, editable included; everything else is in
pyproject.toml. Without a C compiler the install fails loudly rather than leaving a server slow
(see docs/operations.md).

- The wire code: the shards' part reader (actors/part_reader.pyx) and result writer
  (actors/result_writer.pyx), and the gateway's batch cutter (actors/batch_cutter.pyx); and the
  shards' batch statistics (actors/batch_counter.pyx) and commit rows (storage/row_packer.pyx, their
  records written by storage/record_encoder.pyx); and pymalloc's arenas on huge pages in the
  processes that hold members (actors/huge_pages.pyx).
- The engine's own modules, compiled as they are (Cython's pure-Python mode: the .py is both the
  specification and the code compiled; PATRON_PURE_ENGINE=1 runs the .py, engine/__init__.py).
  Modules declaring msgspec Structs stay pure: compiling them gained nothing, and msgspec reads
  their classes as it always has. A `.pxd` beside a module types what scoring and midnight read (Cython reads
  it with the .py; docs/decisions.md, "Typed engine objects"); engine/record_fields.pxd declares
  the Structs scoring reads as C structs, checked at import (docs/decisions.md, "Struct fields
  read as C fields")."""

import os
import re
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = ("actors/part_reader", "actors/batch_cutter", "actors/result_writer", "actors/batch_counter",
            "actors/huge_pages", "storage/record_encoder", "storage/row_packer")
STRUCTS = re.compile(r"^class \w+\(.*\bStruct\b", re.MULTILINE)
# Python's semantics kept: type hints are not C types (ints stay unbounded, None allowed), and a
# function of one argument still takes it by keyword. (Cython's default inference gives a local a
# C type only where it cannot overflow.)
# `nonecheck`: a typed reference holding None raises AttributeError as the .py does, instead of
# crashing the process (a pointer compare a read: +0.25% of scoring's instructions).
ENGINE_DIRECTIVES = {"binding": True, "annotation_typing": False, "always_allow_keywords": True,
                     "nonecheck": True}


def engine_modules() -> list[str]:
    return sorted(str(path) for path in Path("engine").rglob("*.py")
                  if path.name != "__init__.py" and not STRUCTS.search(path.read_text()))


OPTIMISE = ["-O3", "-Wno-array-bounds"]
"""-O3 (below); gcc at -O3 also warns of bounds in CPython's own headers (`_Py_NoneStruct`, 11 in a
build) where nothing is out of bounds: a newcomer's first `make` would show them as if broken."""


def extensions() -> list[Extension]:
    wire = cythonize([Extension(path.replace("/", "."), [f"{path}.pyx"], extra_compile_args=OPTIMISE)
                      for path in COMPILED], language_level=3)
    # -O3: 3.1% fewer instructions than -O1 in replay, 2.2% in a shard's write, now that the engine is typed
    # C (-O1 was as fast while it was Python compiled as it is), for about twice gcc's time; the wire modules'
    # -O3 against -O2, 0.6% more (bench/RESULTS.md, "The engine's C optimised again").
    engine = cythonize([Extension(path[:-3].replace("/", "."), [path], extra_compile_args=OPTIMISE)
                        for path in engine_modules()], language_level=3, compiler_directives=ENGINE_DIRECTIVES,
                       nthreads=os.cpu_count() or 1)
    return wire + engine


# Guarded: cythonize's workers are processes, and where they are spawned (macOS, Python 3.14) each
# imports this file again.
if __name__ == "__main__":
    setup(ext_modules=extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
