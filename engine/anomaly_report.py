"""The anomaly report: one row for each member's anomalous day, made by the midnight run and stored
by the shard. A module of its own because it declares a msgspec Struct, and setup.py leaves a
module that declares one pure (engine/midnight.py is compiled; docs/decisions.md, "Midnight compiled")."""

from msgspec import Struct

__all__ = ["AnomalyRow"]


class AnomalyRow(Struct, gc=False):
    """One member's anomalous day: the points they tried for and the transactions."""

    member_id: str
    day: str
    points: int
    transactions: list[str]
