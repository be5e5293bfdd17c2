"""Checkpoints of a data folder: consistent, compacted copies of every shard with the layout
and rules, the last K kept; and restoring a folder to one (with the server stopped)."""

import contextlib
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from storage.folder import DataFolder, write_atomically
from storage.outbox import RESTORE_GAP
from storage.shard_store import ShardStore, newest_event
from storage.vshard_move import clear_rebalance_note

__all__ = [
    "Manifest",
    "drop_partial",
    "finish_checkpoint",
    "last_checkpoint_failure",
    "list_checkpoints",
    "missing_checkpoint",
    "new_checkpoint",
    "newest_checkpoint_time",
    "note_checkpoint_failure",
    "prune_checkpoints",
    "restore_checkpoint",
]

FAILURE = "last-failure.json"
"""In the checkpoints folder from a failed checkpoint until one succeeds, its modification time
the failure's: the failures' counter starts at 0 with the server, and a restart hid a deployment
whose checkpoints had never succeeded from its alert."""


class Failure(msgspec.Struct):
    at: str
    error: str


class Manifest(msgspec.Struct):
    name: str
    created_at: str
    business_day: str
    rule_version: int
    shards: int
    bytes: int


def new_checkpoint(folder: DataFolder, business_day: str) -> tuple[str, Path]:
    """A name and a partial folder to copy shards into; `finish_checkpoint` makes it visible."""
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + (f"-{business_day}" if business_day else "")
    partial = folder.checkpoints / f".{name}.partial"
    partial.mkdir(parents=True)
    return name, partial


def drop_partial(folder: DataFolder) -> int:
    """Remove the partial folders of checkpoints that failed (a full disk) or that a crash cut
    short: each is as large as the shards it copied, and nothing else ever removes it (an
    outside probe filled a disk with them). Returns how many there were."""
    partials = [path for path in folder.checkpoints.glob(".*.partial") if path.is_dir()]
    for path in partials:
        shutil.rmtree(path, ignore_errors=True)
    return len(partials)


def shard_copy(partial: Path, shard: int) -> Path:
    return partial / "shards" / f"{shard:03d}"


def finish_checkpoint(folder: DataFolder, name: str, partial: Path, manifest: Manifest) -> None:
    """Add the layout and rules, then rename: a checkpoint is complete or not there at all. Once
    renamed it has succeeded, and the note of an earlier failure goes (one left behind by a crash
    is older than the checkpoint, and `last_checkpoint_failure` passes over it)."""
    shutil.copy2(folder.root / "layout.json", partial / "layout.json")
    shutil.copytree(folder.rules, partial / "rules")
    write_atomically(partial / "manifest.json", msgspec.json.format(msgspec.json.encode(manifest)))
    partial.rename(folder.checkpoints / name)
    with contextlib.suppress(OSError):
        (folder.checkpoints / FAILURE).unlink(missing_ok=True)


def prune_checkpoints(folder: DataFolder, keep: int) -> list[str]:
    """Remove all but the newest `keep` checkpoints; returns those kept, oldest first."""
    kept = list_checkpoints(folder)
    for old in kept[:-keep] if keep > 0 else []:
        shutil.rmtree(folder.checkpoints / old)
    return list_checkpoints(folder)


def newest_checkpoint_time(folder: DataFolder) -> float:
    """When the newest checkpoint was made (Unix time), from its manifest; 0 when there is none."""
    names = _names(folder.checkpoints)
    if not names:
        return 0.0
    manifest = msgspec.json.decode((folder.checkpoints / names[-1] / "manifest.json").read_bytes(), type=Manifest)
    return datetime.fromisoformat(manifest.created_at).timestamp()


def note_checkpoint_failure(folder: DataFolder, error: str) -> float:
    """Notes that a checkpoint failed, and why, until one succeeds; returns when (Unix time). On a
    disk with no room for the reason the note is an empty file: a name takes no data block."""
    note = folder.checkpoints / FAILURE
    try:
        write_atomically(note, msgspec.json.encode(Failure(datetime.now(UTC).isoformat(timespec="seconds"),
                                                           error[:1_000])))
    except OSError:
        with contextlib.suppress(OSError), note.open("w"):
            pass
    return last_checkpoint_failure(folder) or time.time()


def last_checkpoint_failure(folder: DataFolder) -> float:
    """When the last checkpoint failed (Unix time), when none has succeeded since; else 0. A note
    older than the newest checkpoint (a crash between the two, a folder restored from a backup)
    counts for nothing."""
    try:
        noted = (folder.checkpoints / FAILURE).stat().st_mtime
    except OSError:
        return 0.0
    return noted if noted > newest_checkpoint_time(folder) else 0.0


def missing_checkpoint(checkpoints: Path, name: str) -> str:
    """Why `name` is not a checkpoint in the folder `checkpoints`; "" when it is one. Read
    without a DataFolder, which makes the data folder's folders (a failed restore left them)."""
    if (checkpoints / name / "manifest.json").exists():
        return ""
    return f"no checkpoint {name!r} in {checkpoints} (there are: {', '.join(_names(checkpoints)) or 'none'})"


def list_checkpoints(folder: DataFolder) -> list[str]:
    return _names(folder.checkpoints)


def _names(checkpoints: Path) -> list[str]:
    """The checkpoints in the folder `checkpoints`, oldest first (none when it is not there)."""
    return sorted(path.parent.name for path in checkpoints.glob("*/manifest.json"))


def restore_checkpoint(folder: DataFolder, name: str) -> Manifest:
    """Bring the data folder back to a checkpoint: every shard, the layout and the rules."""
    source = folder.checkpoints / name
    if missing := missing_checkpoint(folder.checkpoints, name):
        raise FileNotFoundError(missing)
    manifest = msgspec.json.decode((source / "manifest.json").read_bytes(), type=Manifest)
    floors = _event_floors(folder)
    # first what vouched for the folder as it was: a restore cut short leaves none of it standing
    folder.forget_data_id()
    # the keeper's grants were for instances the restore takes back: it starts again from what each
    # restored shard holds, so the units those instances used are any shard's to issue
    shutil.rmtree(folder.stock, ignore_errors=True)
    shutil.rmtree(folder.shards)
    for shard in range(manifest.shards):
        target = folder.shard(shard)
        target.mkdir(parents=True)
        shutil.copy2(shard_copy(source, shard) / "data.mdb", target / "data.mdb")
    shutil.copy2(source / "layout.json", folder.root / "layout.json")
    clear_rebalance_note(folder.root)  # of the layout just replaced (a checkpoint waits for no rebalance)
    shutil.rmtree(folder.rules)
    shutil.copytree(source / "rules", folder.rules)
    for shard in range(manifest.shards):  # next events numbered past every position given (storage/outbox.py)
        store = ShardStore(folder.shard(shard))
        try:
            floors[shard] = store.raise_event_floor(max(floors.get(shard, 0), store.events_bounds()[1] + RESTORE_GAP))
        finally:
            store.close()
    write_atomically(folder.root / _FLOORS, msgspec.json.encode({str(k): v for k, v in sorted(floors.items())}))
    return manifest


_FLOORS = "event-floors.json"
"""Beside the shards, each shard's event floor as the last restore set it: a shard whose store is
lost before the next restore (a reason to restore) still gets a floor past the positions given."""


def recorded_event_floors(folder: DataFolder) -> dict[int, int]:
    """Per shard, the event floor the last restore recorded (none before a restore). A shard the
    restore took away (the checkpoint had fewer) has the newest event it gave: added again, it
    numbers past it, and a position given before the restore still names it."""
    try:
        return {int(k): v for k, v in msgspec.json.decode((folder.root / _FLOORS).read_bytes(),
                                                           type=dict[str, int]).items()}
    except (OSError, ValueError):
        return {}


def _event_floors(folder: DataFolder) -> dict[int, int]:
    """Per shard, a sequence past every event position the folder gave: its newest event, or, when
    its store cannot be read, past the floor the last restore set."""
    floors: dict[int, int] = {}
    recorded = folder.root / _FLOORS
    if recorded.exists():
        with contextlib.suppress(ValueError):
            floors = {int(k): v + RESTORE_GAP for k, v in msgspec.json.decode(recorded.read_bytes(),
                                                                           type=dict[str, int]).items()}
    for path in sorted(folder.shards.glob("[0-9][0-9][0-9]")):
        newest = newest_event(path)
        if newest is not None:
            floors[int(path.name)] = max(floors.get(int(path.name), 0), newest)
    return floors
