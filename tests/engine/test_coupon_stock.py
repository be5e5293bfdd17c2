"""A coupon's inventory split over the shards that issue it: the shares add up to it exactly."""

from hypothesis import given
from hypothesis import strategies as st

from engine.spending.coupon_stock import CountedStock, share_of


@given(st.integers(1, 9_999_999_999), st.integers(1, 64))
def test_the_shares_of_every_shard_add_up_to_the_inventory_and_differ_by_at_most_one(inventory, shards):
    shares = [share_of(inventory, shard, shards) for shard in range(shards)]
    assert sum(shares) == inventory
    assert max(shares) - min(shares) <= 1


def test_each_shard_takes_only_its_share_and_unlimited_stays_unlimited():
    stocks = [CountedStock(shard=shard, shards=3) for shard in range(3)]
    taken = [sum(stock.take("C", 10) for _ in range(20)) for stock in stocks]
    assert taken == [4, 3, 3]
    assert all(CountedStock(shard=2, shards=3).take("FREE", 0) for _ in range(100))
