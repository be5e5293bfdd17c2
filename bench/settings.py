"""A scenario's settings: the bench command's options, where 0 means the scenario's own default."""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_OUT", "EXAMPLE_RULES", "Settings"]

EXAMPLE_RULES = Path(__file__).parents[1] / "examples" / "rules.toml"
DEFAULT_OUT = Path(__file__).parent / "out"


@dataclass
class Settings:
    """The command's options; 0 means the scenario's own default (smaller with `quick`)."""

    out: Path = DEFAULT_OUT
    quick: bool = False
    rules: Path = EXAMPLE_RULES
    shards: int = 0
    durability: str = "strict"
    clients: int = 2
    batch_size: int = 0
    window: int = 8
    transactions: int = 0
    members: int = 0
    rate: float = 0.0
    seconds: float = 0.0
    seed: int = 1
    start_date: str = "2026-11-17"
    work: Path | None = None
    keep_data: bool = False
    kills: int = 0
    subscriber: bool = False
    spending: float = 0.0
    hot_members: int = 0
    """members: the hot set per shard (default a tenth of the members over the shards); midnight: the
    hot set per shard (default: every member in memory)."""
    """ingest, core: the share of spending transactions in the stream (spending: 0.2 unless given)."""

    def pick(self, given: Any, default: Any, quick: Any) -> Any:
        return given or (quick if self.quick else default)

    def parameters(self, **resolved: Any) -> dict:
        """The options as given, then what the scenario made of them."""
        given = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        return {**given, **resolved}
