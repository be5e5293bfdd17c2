"""What patron asks of Ray through the environment of the processes Ray starts."""

from actors.lanes import GROUP_BYTES
from actors.server import INLINE_CALL_BYTES, ray_environment


def test_calls_to_shards_carry_their_batches_up_to_the_inline_size(monkeypatch):
    monkeypatch.delenv("RAY_max_direct_call_object_size", raising=False)
    # a whole group of batches must not go through the object store, with room for the list around its parts
    assert int(ray_environment()["RAY_max_direct_call_object_size"]) == INLINE_CALL_BYTES >= GROUP_BYTES + (64 << 10)


def test_an_operators_own_ray_settings_are_kept(monkeypatch):
    monkeypatch.setenv("RAY_max_direct_call_object_size", "100000")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    assert ray_environment() == {"RAY_max_direct_call_object_size": "100000", "RAY_USAGE_STATS_ENABLED": "1"}


def test_usage_statistics_are_off_unless_an_operator_turns_them_on(monkeypatch):
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    assert ray_environment()["RAY_USAGE_STATS_ENABLED"] == "0"
