"""The midnight run as operators drive it: a date after tomorrow is refused unless allowed (test
systems), the run belongs to the server (a caller that goes away does not stop it), and
`patron midnight` follows it to the end."""

import subprocess
import sys
import time

import grpc
import pytest

from actors.coordinator import MOST_FUTURE_DAYS
from client import PatronClient
from engine.calendar import iso, parse_day
from engine.programme import Programme
from engine.validation import load_rules_file
from proto import patron_pb2 as pb
from tests.conftest import EXAMPLE_RULES

LONG_AGO = parse_day("2026-02-01")
"""A folder whose business day is far behind: running it up to a recent date takes hundreds of
dates (about 290), long enough to leave mid-run."""
UNTIL = "2026-11-17"
DATES = parse_day(UNTIL) - LONG_AGO


def today() -> int:
    """The programme's date now, by the wall clock, as the server sees it."""
    return Programme(load_rules_file(EXAMPLE_RULES)).calendar.day_of(int(time.time() * 1000))


def business_days(client: PatronClient) -> set[str]:
    return {shard.business_day for shard in client.status().shards}


def wait_for_the_end(client: PatronClient, seconds: float = 300) -> pb.MidnightProgress:
    deadline = time.monotonic() + seconds
    while (run := client.status().midnight).running:
        assert time.monotonic() < deadline, "the midnight run did not end"
        time.sleep(0.2)
    return run


def test_a_date_after_tomorrow_is_refused_unless_allowed(start_server):
    server = start_server(shards=2, start_date=today() - 1)
    with PatronClient(server.address, retries=0) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.run_midnight(iso(today() + 2))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "after tomorrow" in raised.value.details()
        assert "allow_future" in raised.value.details()
        assert business_days(client) == {iso(today() - 1)}  # nothing ran
        assert list(client.run_midnight(iso(today() + 1)).dates) == [iso(today()), iso(today() + 1)]
        assert list(client.run_midnight(iso(today() + 3), allow_future=True).dates) == [
            iso(today() + 2), iso(today() + 3)]
        with pytest.raises(grpc.RpcError) as raised:  # years of runs that nothing could stop
            client.run_midnight(iso(today() + 2 + MOST_FUTURE_DAYS), allow_future=True)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"more than {MOST_FUTURE_DAYS:,} days after tomorrow" in raised.value.details()
        assert business_days(client) == {iso(today() + 3)}


def test_the_run_goes_on_when_its_caller_goes_away(start_server):
    server = start_server(shards=2, start_date=LONG_AGO)
    with PatronClient(server.address) as client:
        call = client.admin.RunMidnight.future(pb.RunMidnightRequest(date=UNTIL), timeout=600)
        deadline = time.monotonic() + 60
        while not client.status().midnight.running:
            assert time.monotonic() < deadline, "the midnight run did not start"
            time.sleep(0.05)
        call.cancel()
        run = wait_for_the_end(client)
        assert (run.error, len(run.dates), run.dates[-1]) == ("", DATES, UNTIL)
        assert business_days(client) == {UNTIL}


def test_a_background_run_is_joined_and_followed_to_its_end(start_server):
    server = start_server(shards=2, start_date=LONG_AGO)
    with PatronClient(server.address) as client:
        started = client.run_midnight("2026-05-01", background=True)
        assert (started.running, started.until) == (True, "2026-05-01")
        joined = client.run_midnight(UNTIL, background=True)  # the run in progress goes on further
        assert joined.running
        seen: list[pb.MidnightProgress] = []
        run = client.follow_midnight(every=0.05, progress=seen.append)
        assert (run.running, run.until, len(run.dates), run.error) == (False, UNTIL, DATES, "")
        assert run.dates == sorted(run.dates)
        assert seen
        assert all(p.running and p.members_done <= p.members_total for p in seen)
        assert business_days(client) == {UNTIL}


def patron(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=600,
                          check=False)


def test_patron_midnight_follows_the_run_to_its_end_and_refuses_a_future_date(start_server):
    server = start_server(shards=2, start_date=LONG_AGO)
    refused = patron("midnight", "--date", iso(today() + 5), "--address", server.address)
    assert refused.returncode == 1
    assert "after tomorrow" in refused.stderr
    assert "--allow-future" in refused.stderr
    done = patron("midnight", "--date", UNTIL, "--address", server.address)
    assert done.returncode == 0, done.stderr
    assert " dates done), 20" in done.stderr  # progress while it ran, a date under way
    assert '"until": "' + UNTIL + '"' in done.stdout
    assert "nothing to run" not in done.stderr
    with PatronClient(server.address) as client:
        assert business_days(client) == {UNTIL}
        assert len(client.status().midnight.dates) == DATES
    again = patron("midnight", "--date", UNTIL, "--address", server.address)
    assert again.returncode == 0, again.stderr
    assert f"nothing to run for {UNTIL}: the business day is already {UNTIL} or later" in again.stderr


def test_the_clock_catches_up_missed_dates_at_start_and_status_shows_that_run(start_server):
    started = today()
    server = start_server(shards=2, start_date=started - 2, midnight="clock")
    with PatronClient(server.address) as client:
        deadline = time.monotonic() + 60
        while not (run := client.status().midnight).dates or run.running:
            assert time.monotonic() < deadline, "the clock did not catch up"
            time.sleep(0.2)
        # The programme's midnight may pass while the test runs: the clock then runs one date more.
        dates = [parse_day(date) for date in run.dates]
        assert (dates[0], run.error) == (started - 1, "")
        assert dates == list(range(started - 1, dates[-1] + 1))
        assert dates[-1] in {started, today()}
        assert business_days(client) == {iso(dates[-1])}
