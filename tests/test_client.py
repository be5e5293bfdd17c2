"""The Python client's retry pauses: callers refused together must not come back together."""

from client.patron_client import backoff


def test_retries_wait_about_the_doubling_pause_each_spread_over_half_to_one_and_a_half_of_it():
    for attempt, mean in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (9, 2.0)):
        pauses = [backoff(attempt) for _ in range(400)]
        assert all(0.5 * mean <= pause <= 1.5 * mean for pause in pauses)
        assert min(pauses) < 0.6 * mean  # spread, not one instant
        assert max(pauses) > 1.4 * mean
        assert 0.9 * mean < sum(pauses) / len(pauses) < 1.1 * mean
