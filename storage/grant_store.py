"""The coupon grants of a programme on disk: per coupon id, how many units of its inventory
each shard was granted in all. One small LMDB environment (`DIR/stock`) whose single writer is
the grant keeper; every change is synced to disk before it returns, whatever the shards'
durability, because a shard may issue what it was granted as soon as it has the answer."""

from pathlib import Path

import lmdb
import msgspec

__all__ = ["GrantStore"]

_MAP_BYTES = 64 << 20
"""A coupon's record is a few bytes per shard: thousands of coupons fit many times over."""
_decode = msgspec.msgpack.Decoder(dict[int, int]).decode
_encode = msgspec.msgpack.Encoder().encode


class GrantStore:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(path), map_size=_MAP_BYTES, max_dbs=1, sync=True, metasync=True,
                             readahead=False, lock=True)
        self.db = self.env.open_db(b"grants")

    def load(self) -> dict[str, dict[int, int]]:
        """coupon id -> shard -> units granted to it in all."""
        with self.env.begin(db=self.db) as txn:
            return {key.decode(): _decode(value) for key, value in txn.cursor()}

    def save(self, coupon_id: str, grants: dict[int, int]) -> None:
        self.save_many({coupon_id: grants})

    def save_many(self, changed: dict[str, dict[int, int]]) -> None:
        """Several coupons' records in one synced commit (a shard's report or settlement)."""
        if not changed:
            return
        with self.env.begin(write=True, db=self.db) as txn:
            for coupon_id, grants in changed.items():
                txn.put(coupon_id.encode(), _encode(grants))

    def close(self) -> None:
        self.env.close()
