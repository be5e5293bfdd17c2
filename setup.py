"""The compiled wire code (the shards' part reader, actors/part_reader.pyx, and the gateway's
batch cutter, actors/batch_cutter.pyx), built by every `pip install`, editable
included; everything else is in pyproject.toml. Without a C compiler the install fails loudly
rather than leaving a shard to read its parts slowly (see docs/operations.md)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = ("part_reader", "batch_cutter")

setup(ext_modules=cythonize([Extension(f"actors.{name}", [f"actors/{name}.pyx"], extra_compile_args=["-O2"])
                             for name in COMPILED], language_level=3))
