"""The engine: plain data in, plain data out.

Most of its modules are also compiled by Cython as they are (setup.py), each build beside its
.py. Which one an import loads is decided here, before any submodule is imported: the .py when
PATRON_PURE_ENGINE=1 (the executable specification, for differential tests and debugging) or
when any engine module's .py or .pxd is newer than its build (edited since the last `make venv`:
the edit runs, not the build; and then every module runs its .py, because compiled modules read
the classes declared in .pxd files as C structs and cannot take them from a .py) or when a msgspec
Struct the build reads as a C struct is laid out otherwise than it was compiled for (a field
added, removed or renamed since: engine/record_fields.py), else the build; a build without its
.py is refused. `compiled_engine()` says whether
the engine runs compiled (actors/batch_wire.py says so at every start)."""

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec, SourceFileLoader
from importlib.util import spec_from_file_location
from pathlib import Path

PURE = os.environ.get("PATRON_PURE_ENGINE", "") not in ("", "0")
_HERE = Path(__file__).parent


def _build(source: Path) -> Path | None:
    return next((b for b in (source.with_name(source.stem + s) for s in EXTENSION_SUFFIXES) if b.is_file()), None)


_ONE_INSTALL = 2.0
"""Seconds: a wheel's install writes a module's .py and its build in either order, so a .py only
that much newer than its build is the one compiled."""


def _stale() -> list[str]:
    """Why the builds cannot all run: each module edited since its build (naming the .py or the
    .pxd that changed), and each typed module (a .pxd) whose build is missing while others have
    theirs, since the compiled modules that cimport it would fail to import its .py."""
    sources = sorted(_HERE.rglob("*.py"))
    builds = {source: _build(source) for source in sources}
    any_built = any(builds.values())
    stale = []
    for source, build in builds.items():
        declared, name = source.with_suffix(".pxd"), str(source.relative_to(_HERE.parent))
        if build is None:
            if any_built and declared.is_file():
                stale.append(f"{name} (no build)")
        elif source.stat().st_mtime > build.stat().st_mtime + _ONE_INSTALL:
            stale.append(name)
        elif _edited(declared, build):
            stale.append(str(declared.relative_to(_HERE.parent)))
    return stale


def _edited(declared: Path, build: Path) -> bool:
    return declared.is_file() and declared.stat().st_mtime > build.stat().st_mtime + _ONE_INSTALL


_STALE = [] if PURE else _stale()
_ALL_PURE = PURE or bool(_STALE)
"""Decided once, for every engine module: all compiled or all from their .py."""


class _PureWhenAsked:
    """First on sys.meta_path: an engine submodule with a build that must not run is loaded from
    its .py; everything else is left to Python's own finders (which prefer a build)."""

    @staticmethod
    def find_spec(name: str, path: list[str] | None = None, target: object = None) -> ModuleSpec | None:
        if not name.startswith(f"{__name__}.") or not path:
            return None
        source = Path(path[0], name.rpartition(".")[2] + ".py")
        build = _build(source)
        if build is not None and not source.is_file():
            # a build left behind by a module renamed or removed (builds are not in git)
            raise ModuleNotFoundError(f"{name} has a build but no .py ({build}); make clean", name=name)
        if build is None or not _ALL_PURE:
            return None
        return spec_from_file_location(name, source, loader=SourceFileLoader(name, str(source)))


if not any(isinstance(finder, _PureWhenAsked) for finder in sys.meta_path):  # once, reloaded or not
    sys.meta_path.insert(0, _PureWhenAsked())


def _mislaid() -> list[str]:
    """Each Struct the build reads as a C struct but is laid out otherwise (record_fields.py).
    Checked by importing record_fields' build first; when it finds a difference, the engine
    modules that import loaded are forgotten again, so that every one then loads its .py."""
    if _build(_HERE / "record_fields.py") is None:  # no build at all: nothing compiled to check
        return []
    before = set(sys.modules)
    try:
        from engine.record_fields import layout_problems
        problems = layout_problems()
    except (ImportError, ValueError, AttributeError, TypeError) as error:  # Cython's own checks at the
        # build's import: a class's size (ValueError), a class moved or renamed (AttributeError) or
        # replaced (TypeError)
        problems = [f"{type(error).__name__}: {error}"]
    if problems:
        for name in set(sys.modules) - before:
            if name.startswith(f"{__name__}."):
                del sys.modules[name]
    return problems


_MISLAID = [] if _ALL_PURE else _mislaid()
_ALL_PURE = _ALL_PURE or bool(_MISLAID)


def compiled_engine() -> tuple[bool, str]:
    """Whether the engine runs compiled, and if not, why."""
    if PURE:
        return False, "PATRON_PURE_ENGINE is set"
    if _build(_HERE / "scoring.py") is None:
        return False, "engine/scoring.py has no compiled build beside it"
    if _STALE:  # as decided at import: what this process runs
        return False, f"edited since compiled: {', '.join(_STALE)}"
    if _MISLAID:
        return False, f"Structs laid out otherwise than compiled for: {'; '.join(_MISLAID)}"
    orphans = _orphans()
    return (False, f"builds without a .py: {', '.join(orphans)}") if orphans else (True, "")


def _orphans() -> list[str]:
    """Builds whose .py is gone: importing their module fails rather than run them."""
    return sorted(str(build.relative_to(_HERE.parent)) for build in [*_HERE.rglob("*.so"), *_HERE.rglob("*.pyd")]
                  if not _source_of(build).is_file())


def _source_of(build: Path) -> Path:
    suffix = max((s for s in EXTENSION_SUFFIXES if build.name.endswith(s)), key=len, default=build.suffix)
    return build.with_name(build.name[:-len(suffix)] + ".py")
