"""The compiled part reader (actors/part_reader.pyx), built by every `pip install`, editable
included; everything else is in pyproject.toml. Without a C compiler the install fails loudly
rather than leaving a shard to read its parts slowly (see docs/operations.md)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension("actors.part_reader", ["actors/part_reader.pyx"], extra_compile_args=["-O2"])],
                            language_level=3))
