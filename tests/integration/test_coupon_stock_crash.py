"""kill -9 during coupon issuance on two shards: of the server (every process goes), then of one
shard actor, then of the grant keeper (Ray restarts either). Batches that got no answer are sent
again, as a till does. In the end exactly the inventory was issued: nothing twice, nothing
oversold, no unit lost, and no shard issued past the grants on the keeper's disk."""

import os
import signal
import threading
import time

import grpc

from actors.routing import shard_of
from storage.folder import DataFolder
from storage.grant_store import GrantStore
from tests.integration.test_coupon_stock_served import START, held, issues, limited_rules

INVENTORY = 300
MEMBERS = [f"c{n}" for n in range(6)]


class Till:
    """Sends numbered batches of ten coupon_issue transactions over the members, each until it
    is answered, and keeps the code every transaction id was answered with."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.reasons: list[str] = []
        self.next = 0

    def batch(self, number: int) -> list[dict]:
        return [txn for k in range(10) for txn in issues(f"b{number}-{k}", MEMBERS[(number + k) % len(MEMBERS)], 1)]

    def send(self, client, number: int) -> list:
        results = client.submit(self.batch(number)).results
        for result in results:
            if result.coupon_code:
                assert self.codes.setdefault(result.txn_id, result.coupon_code) == result.coupon_code
            else:
                self.reasons.append(result.reason)
        return results

    def send_until_answered(self, process, number: int, seconds: float = 60) -> list:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with process.client() as client:
                    return self.send(client, number)
            except (grpc.RpcError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stream(self, process, stop: threading.Event) -> None:
        """Batch after batch until told to stop or the server goes; the unanswered one is kept."""
        try:
            with process.client() as client:
                while not stop.is_set():
                    self.send(client, self.next)
                    self.next += 1
        except grpc.RpcError:
            pass


def _crash_while_streaming(till: Till, process, kill, after: int) -> None:
    stop = threading.Event()
    sender = threading.Thread(target=till.stream, args=(process, stop))
    start = till.next
    sender.start()
    while till.next < start + after and sender.is_alive():
        time.sleep(0.01)
    kill()
    stop.set()
    sender.join(60)
    assert not sender.is_alive()


def _actor(process, name: str) -> int:
    return next(pid for pid, command in process.session().items() if command.startswith(f"ray::{name}"))


def test_kill_9_during_issuance_issues_exactly_the_inventory_and_nothing_twice(serve_process, tmp_path):
    rules = limited_rules(tmp_path, INVENTORY)
    data = tmp_path / "data"
    till = Till()
    first = serve_process(data, "--shards", "2", "--start-date", START, rules=rules)
    with first.client() as client:
        client.enroll_many([{"member_id": member} for member in MEMBERS])
    assert {shard_of(DataFolder(data).layout(), member) for member in MEMBERS} == {0, 1}

    _crash_while_streaming(till, first, first.kill, after=4)  # the server, while a batch is in flight
    first.kill_everything()  # Ray's agents outlive a killed driver
    second = serve_process(data, "--start-date", START, rules=rules)
    till.send_until_answered(second, till.next)  # the batch in flight, sent again
    till.next += 1

    for actor in ("ShardActor", "GrantKeeper"):  # Ray restarts either; the keeper reads its grants back
        _crash_while_streaming(till, second, lambda name=actor: os.kill(_actor(second, name), signal.SIGKILL),
                               after=4)
        till.send_until_answered(second, till.next)
        till.next += 1

    while any(r.coupon_code for r in till.send_until_answered(second, till.next)):  # the rest, on both shards
        till.next += 1
        assert till.next < INVENTORY
    assert set(till.reasons) == {"out_of_stock"}
    with second.client() as client:
        by_member = {member: held(client, member) for member in MEMBERS}
    codes = [code for member_codes in by_member.values() for code in member_codes]
    assert len(codes) == len(set(codes)) == INVENTORY  # none lost, none twice, none oversold
    assert set(codes) == set(till.codes.values())  # each answered, resends with the first code
    assert second.terminate() == 0
    layout, grants = DataFolder(data).layout(), GrantStore(data / "stock")
    granted = grants.load()["LIMITED"]
    grants.close()
    assert sum(granted.values()) == INVENTORY
    for shard in (0, 1):  # no shard issued past what the keeper has on disk for it
        assert sum(len(c) for m, c in by_member.items() if shard_of(layout, m) == shard) <= granted[shard]
