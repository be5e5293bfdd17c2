"""The anomaly history a replay keeps (engine/history.py): the day's transaction ids per member,
as the anomaly report lists them, however the day's ids arrived and were asked about."""

from hypothesis import given
from hypothesis import strategies as st

from engine.history import RecentHistory

_SEEN = st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.integers(10, 13)), max_size=40)


@given(seen=_SEEN, asked=st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3"]), st.integers(10, 13)), max_size=6),
       at=st.integers(0, 40))
def test_a_member_days_ids_are_those_remembered_in_order_whenever_asked(seen, asked, at):
    """Asking about a day part way through (a midnight's report while late transactions still come)
    changes nothing of what a later ask answers."""
    history = RecentHistory()
    for number, (member, day) in enumerate(seen):
        if number == at:
            for ask_member, ask_day in asked:
                history.transactions_on(ask_member, ask_day)
        history.remember(member, day, f"t{number}")
    for member in ("m1", "m2", "m3"):
        for day in range(10, 14):
            expected = [f"t{n}" for n, (m, d) in enumerate(seen) if (m, d) == (member, day)]
            assert history.transactions_on(member, day) == expected


def test_days_before_a_day_are_forgotten_asked_about_or_not():
    history = RecentHistory()
    for day in (10, 11, 12):
        history.remember("m1", day, f"t{day}")
    assert history.transactions_on("m1", 10) == ["t10"]
    history.forget_before(12)
    assert [history.transactions_on("m1", day) for day in (10, 11, 12)] == [[], [], ["t12"]]


def test_an_answer_is_a_copy():
    history = RecentHistory()
    history.remember("m1", 10, "t1")
    history.transactions_on("m1", 10).append("not remembered")
    assert history.transactions_on("m1", 10) == ["t1"]


def test_a_history_of_another_kind_is_told_only_if_it_asks_to_be():
    """A shard's history reads its transaction index and sets `told` False: the engine does not
    call it for each transaction (storage/index_history.py); any other is told as a replay's is."""
    from engine.history import remember_in

    class Listening:
        def __init__(self, told: bool) -> None:
            self.told, self.heard = told, []

        def remember(self, member_id, day, txn_id) -> None:
            self.heard.append((member_id, day, txn_id))

    told, untold = Listening(True), Listening(False)
    for history in (told, untold):
        remember_in(history, "m1", 10, "t1")
    assert (told.heard, untold.heard) == ([("m1", 10, "t1")], [])
