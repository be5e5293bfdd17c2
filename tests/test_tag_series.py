"""Members per tag in the metrics: every computed tag, and only the largest manual ones, since
operators' free-text tags would otherwise be series without bound."""

from actors.metrics import tags_to_show


def test_computed_tags_are_always_shown_and_the_smallest_manual_ones_left_out():
    counts = {"lapsed": 1, "vip": 50, "staff": 7, "b-list": 7, "a-list": 7, "once": 1}
    shown = tags_to_show(counts, computed={"lapsed", "gone"}, most=3)
    # "gone" has no member yet: shown at 0 (a probe found no series, where docs promised one)
    assert shown == {"lapsed": 1, "gone": 0, "vip": 50, "a-list": 7, "b-list": 7}


def test_under_the_limit_every_tag_is_shown():
    counts = {"lapsed": 3, "vip": 1}
    assert tags_to_show(counts, computed={"lapsed"}) == counts
