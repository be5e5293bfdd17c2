"""The project's own documents: a clone has everything a reader is sent to, and docs/rules.md
names every key of the rules document."""

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec

from engine.rules import Rules

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "rules.toml"
RULES_DOC = ROOT / "docs" / "rules.md"
# documents that live beside the repository, not in it: spelled apart so this file does not match
ELSEWHERE = re.compile("|".join([r"\.\./" + "shared", r"/ ?[\"']" + "shared" + r"[\"']", "SPEC" + r"\.md",
                                 "ARCHITECTURE" + r"\.md"]))


def project_files() -> list[Path]:
    """Tracked files, and new ones not ignored (a file about to be committed counts too)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def places(pattern: re.Pattern) -> list[str]:
    """`file:line: match` for every match of `pattern` in the project's text files."""
    found = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and other binary files
        found += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
                  for m in pattern.finditer(text)]
    return found


def test_no_file_sends_the_reader_to_documents_a_clone_does_not_have():
    assert places(ELSEWHERE) == []


def test_no_file_keeps_a_merge_conflict():
    assert places(re.compile(r"^(<{7} |>{7} )", re.MULTILINE)) == []


def test_the_readme_links_the_documents():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("docs/rules.md", "docs/api.md", "docs/operations.md", "docs/decisions.md"):
        assert f"]({name})" in readme
        assert (ROOT / name).is_file()


# --- every key of the rules document is in docs/rules.md


def _walk(value: Any, path: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Key paths of a parsed document; an array of tables contributes its tables' keys once."""
    found = set()
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for table in value:
            found |= _walk(table, path)
    elif isinstance(value, dict) and path not in _MAPPINGS:
        for key, inner in value.items():
            found |= {(*path, key)} | _walk(inner, (*path, key))
    return found


def _model_keys(kind: Any, path: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Key paths the rules model accepts; a table of free names (channel to tier) is one key."""
    found = set()
    for field in msgspec.structs.fields(kind):
        inner, where = _unwrap(field.type), (*path, field.encode_name)
        found.add(where)
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            found |= _model_keys(inner, where)
    return found


def _unwrap(kind: Any) -> Any:
    while True:
        origin = get_origin(kind)
        if origin is Union or str(origin) == "typing.Annotated" or type(kind).__name__ == "UnionType":
            kind = next(a for a in get_args(kind) if a is not type(None))
        elif origin is list:
            kind = get_args(kind)[0]
        else:
            return kind


_MAPPINGS = {("default_tier_by_channel",)}

_HEADER = re.compile(r"^#?\s*\[\[?([\w.]+)\]\]?\s*(#.*)?$")
_COMMENTED_KEY = re.compile(r"^#\s*([a-z_]+)\s*=\s*\S")


def commented_keys(text: str) -> set[tuple[str, ...]]:
    """Alternatives the example shows in comments (`# days = 365`, `# [[redemption.cash.steps]]`)."""
    table: tuple[str, ...] = ()
    found = set()
    for line in text.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            table = tuple(header.group(1).split("."))
            found.add(table)
        elif key := _COMMENTED_KEY.match(line.strip()):
            found.add((*table, key.group(1)))
    return found


def documented_sections(text: str) -> dict[str, str]:
    """Each table path named in a heading of docs/rules.md (`[points.spend]`, `[[tiers]]`) with its
    section's text; the top-level keys' section is ""."""
    sections: dict[str, str] = {}
    for part in re.split(r"^(?=#+ )", text, flags=re.M):
        heading = part.splitlines()[0] if part.strip() else ""
        names = re.findall(r"`\[\[?([\w.]+)\]\]?`", heading) if heading.startswith("#") else []
        if heading.startswith("#") and re.search(r"top.level", heading, flags=re.I):
            names.append("")
        for name in names:
            sections[name] = sections.get(name, "") + part
    return sections


def undocumented(keys: set[tuple[str, ...]], sections: dict[str, str]) -> list[str]:
    missing = []
    for key in sorted(keys):
        if ".".join(key) in sections:
            continue
        table = max((key[:n] for n in range(len(key)) if ".".join(key[:n]) in sections), key=len)
        rest = ".".join(key[len(table):])
        if f"`{rest}`" not in sections[".".join(table)]:
            missing.append(".".join(key))
    return missing


def test_docs_rules_names_every_key_of_the_example_and_of_the_rules_model():
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = _walk(tomllib.loads(text), ()) | commented_keys(text) | _model_keys(Rules, ())
    assert {("points", "expiry", "days"), ("tiers", "downgrade_to"), ("default_tier_by_channel",)} <= keys
    assert undocumented(keys, documented_sections(RULES_DOC.read_text(encoding="utf-8"))) == []
