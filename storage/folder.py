"""The data folder: where each shard's LMDB, the published rules, reports and checkpoints live,
and its layout (how many shards, which virtual shards each owns, on which node)."""

import contextlib
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec

__all__ = ["DataFolder", "Layout", "PublishedRules", "ReusedId", "current_rules_of", "serve_problem",
           "version_in_force", "write_atomically"]


class Layout(msgspec.Struct):
    shards: int
    virtual_shards: int
    owners: list[int]
    """owners[v] is the shard that owns virtual shard v."""
    nodes: dict[str, str] = {}
    """On a Ray cluster, the name of each shard's node (its `patron-node` label): the shard's data
    lives on that node's disk (actors/placement.py)."""
    folder_id: str = ""
    """Names this data folder's shards apart from another's under a node's own data root (given
    on the first start on a cluster)."""
    first_shards: int = 0
    """The shards before any was added (patron shards rebalance); 0: none was. Event positions
    given before then name that many."""
    first_day: int = 0
    """The business day the folder began on (its first opened serve's `--start-date`, else that
    day): its first midnight run closes the days before it too (a late transaction may be dated
    there), so until that run their anomaly reports are not made. 0 in a folder made before it
    was kept."""
    opened: int = 0
    """Shards 0 to opened - 1 have opened their LMDB once: a start that finds one's data missing
    refuses to make it anew, empty (a node started with another data root served empty shards and
    scored acknowledged transactions again: an outside probe)."""


class PublishedRules(msgspec.Struct):
    version: int
    text: str
    published_at: str
    count_past_spend: bool = True
    """As asked of the publish: a shard that takes the version later (a publish cut short) is
    given it the same way."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so a crash leaves either the old content or the new, never a mix. A write that
    fails (a full disk) leaves no temporary file behind either."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the write's own error is the one to tell
            temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _alive(pid: int, started: str = "") -> bool:
    """Whether process `pid` lives, and is the one that started at `started` (its start in clock
    ticks since boot, where /proc says; empty: not known) rather than another given its number
    since (after a reboot, a server's number may be a shell's: it was taken for the server)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):  # killed, not yet reaped: a start a second after a kill -9
        return False                        # was refused as served by it (an outside probe)
    return not started or (fields[19] if fields else "") in ("", started)


def _started(pid: int) -> str:
    """The process's start in clock ticks since boot (/proc/PID/stat's 22nd field), or empty."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command's name (which may hold spaces): its state first;
    empty where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def _holder(marker: Path) -> tuple[int, str]:
    """(pid, start) written in a serve.pid; start empty in one written before it was kept."""
    pid, _, started = marker.read_text().strip().partition(" ")
    return int(pid or 0), started


_OWN = {"shards", "rules", "reports", "checkpoints", "stock", "layout.json", "data-id", "serve.pid", "moving.json",
        "rebalance.json", "event-floors.json", "lost+found"}
"""What a data folder holds (and what a filesystem's root holds of its own): a folder with other
files is someone else's."""


def serve_problem(root: Path) -> str:
    """Why `root` cannot be served as a data folder, or empty: it is absent, empty, or patron's.
    A checkpoint is refused (served, it was changed in place), and so is a folder holding other
    files (/etc was filled with patron's: an outside probe)."""
    if root.exists() and not root.is_dir():  # it failed deep in the start, "…/shards: Not a directory" (a probe)
        return f"{root} is a file, not a folder: give --data a new or empty folder, or one a patron server made"
    if not root.is_dir():
        above = next((parent for parent in root.parents if parent.exists()), None)
        if above is not None and not above.is_dir():  # failed later, making the folder (a probe)
            return f"{root}: {above} is a file, not a folder: give --data a new or empty folder, or one a patron " \
                   f"server made"
        return ""
    try:
        names = [p.name for p in root.iterdir()]
    except OSError as error:  # a folder this user may not read: told, not a traceback
        return f"{root}: cannot be read ({error.strerror})"
    if "manifest.json" in names:
        return (f"{root} is a checkpoint, not a data folder: serving it would change it; restore it into a "
                f"data folder with `patron restore` (docs/operations.md)")
    others = sorted(name for name in names  # a write a crash cut short leaves NAME.tmp
                    if name not in _OWN and name.removesuffix(".tmp") not in _OWN and not name.startswith("."))
    if others and not (root / "layout.json").exists():
        shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        return (f"{root} holds files that are not patron's ({shown}): give --data a new or empty folder, or one "
                f"a patron server made")
    return ""


def stored_layout(root: Path) -> Layout | None:
    """The layout of the data folder at `root`, read without a DataFolder (which makes its
    folders); None where it has none yet or it cannot be read (the start says why later)."""
    try:
        return msgspec.json.decode((root / "layout.json").read_bytes(), type=Layout)
    except (OSError, msgspec.DecodeError):
        return None


class ReusedId(msgspec.Struct):
    """A transaction id that more than one member used on one local day."""

    txn_id: str
    members: list[str]


def version_in_force(root: Path) -> int:
    """The rules version a data folder has in force (0: none, or no folder), read without making
    the folder: `serve` checks a file it will publish before anything starts."""
    current = _current_rules(root / "rules")
    return current.version if current is not None else 0


def _current_rules(rules: Path) -> PublishedRules | None:
    pointer = rules / "current.json"
    return msgspec.json.decode(pointer.read_bytes(), type=PublishedRules) if pointer.exists() else None


def current_rules_of(root: Path) -> PublishedRules | None:
    """The rules in force in data folder `root`, read without making its folders."""
    return _current_rules(root / "rules")


class DataFolder:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()  # its paths go to actors, which run in another folder (actors.server)
        for folder in (self.shards, self.rules, self.reports, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def rules(self) -> Path:
        return self.root / "rules"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def stock(self) -> Path:
        """The grant keeper's record of limited coupons' inventory granted to each shard."""
        return self.root / "stock"

    def shard(self, shard: int) -> Path:
        return self.shards / f"{shard:03d}"

    def data_id(self) -> str:
        """Names this folder's data apart from any other's (made at first use; a restore makes a
        new one, since what was written after the checkpoint is gone): what a client's own record
        of its work against a server, such as an import's progress file, is checked against."""
        path = self.root / "data-id"
        if not path.exists():
            write_atomically(path, uuid.uuid4().hex.encode())
        return path.read_text(encoding="ascii").strip()

    def forget_data_id(self) -> None:
        (self.root / "data-id").unlink(missing_ok=True)

    # -- layout ------------------------------------------------------------------------

    def layout(self) -> Layout | None:
        path = self.root / "layout.json"
        return msgspec.json.decode(path.read_bytes(), type=Layout) if path.exists() else None

    def save_layout(self, layout: Layout) -> None:
        write_atomically(self.root / "layout.json", msgspec.json.format(msgspec.json.encode(layout)))

    # -- published rules ---------------------------------------------------------------

    def current_rules(self) -> PublishedRules | None:
        return _current_rules(self.rules)

    def write_report(self, day: str, rows: list) -> Path:
        """The anomaly report of one local day as JSONL: member, points that day, transactions."""
        path = self.reports / f"anomalies-{day}.jsonl"
        write_atomically(path, msgspec.json.Encoder().encode_lines(rows))
        return path

    def write_reused_ids(self, day: str, rows: list[ReusedId]) -> Path:
        """Beside the anomaly report: the transaction ids of one local day that more than one
        member used, as JSONL (`txn_id`, `members`)."""
        path = self.reports / f"reused-ids-{day}.jsonl"
        write_atomically(path, msgspec.json.Encoder().encode_lines(rows))
        return path

    def claim(self, pid: int) -> None:
        """One server per data folder: refuse when another live process holds it."""
        marker = self.root / "serve.pid"
        if marker.exists():
            holder, started = _holder(marker)
            if holder and holder != pid and _alive(holder, started):
                raise RuntimeError(f"{self.root} is served by process {holder}; stop it first")
        write_atomically(marker, f"{pid} {_started(pid)}".strip().encode())

    def release(self, pid: int) -> None:
        marker = self.root / "serve.pid"
        if marker.exists() and _holder(marker)[0] == pid:
            marker.unlink()

    def served(self) -> int:
        """The pid of a live server holding the folder, or 0."""
        marker = self.root / "serve.pid"
        holder, started = _holder(marker) if marker.exists() else (0, "")
        return holder if holder and _alive(holder, started) else 0

    def published_rules(self, version: int) -> str:
        """The text of a version published before (OSError when the folder does not have it)."""
        return (self.rules / f"v{version:06d}.toml").read_text(encoding="utf-8")

    def publish_rules(self, version: int, text: str, count_past_spend: bool = True) -> PublishedRules:
        """Keep every version as the retailer sent it; `current.json` names the one in force."""
        published = PublishedRules(version, text, datetime.now(UTC).isoformat(timespec="seconds"), count_past_spend)
        write_atomically(self.rules / f"v{version:06d}.toml", text.encode())
        write_atomically(self.rules / "current.json", msgspec.json.encode(published))
        return published
