"""What patron asks of Ray through the environment of the processes Ray starts."""

import re
from pathlib import Path

from actors.lanes import GROUP_BYTES, GROUP_LIMIT
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


def test_the_operations_guide_gives_the_sizes_serve_uses():
    # operators copy the guide's `export` onto every node of a cluster: a size changed in the
    # code and not there would leave a cluster's calls larger than its nodes carry inline
    guide = " ".join((Path(__file__).parents[1] / "docs" / "operations.md").read_text().split())
    assert set(re.findall(r"RAY_max_direct_call_object_size=(\d+)", guide)) == {str(INLINE_CALL_BYTES)}
    assert f"up to {_mib(INLINE_CALL_BYTES)} inside the call" in guide
    assert f"up to {GROUP_LIMIT} batches and {_mib(GROUP_BYTES)}" in guide


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"  # 6.5 MiB stays 6.5
