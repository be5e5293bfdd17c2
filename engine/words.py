"""C helpers for comparing str (words.pxd), for the compiled modules that cimport them (filters,
scoring). Nothing runs here: the .py engine compares as Python does. The module exists so that an
edit of words.pxd marks the build stale (engine/__init__.py) like any typed module's."""

__all__: list[str] = []
