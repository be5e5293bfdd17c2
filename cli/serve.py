"""`patron serve`: the engine on an embedded local Ray (or a cluster), until SIGTERM or Ctrl-C."""

import asyncio
import gc
import logging
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import grpc

from actors.config import ServeConfig
from actors.logs import collect_in_small_steps, configure_logging
from actors.server import Server, refuse_before_start
from cli.admin import counted
from engine.errors import PatronError
from storage.folder import DataFolder

__all__ = ["AcceptedSinceStart", "run_serve"]

COUNTS_EVERY = 10.0

log = logging.getLogger("patron.serve")
RAY_WATCH_SECONDS = 2.0


def run_serve(config: ServeConfig, demo: int = 0) -> int:
    signal.signal(signal.SIGHUP, _reload_asked)  # first: its default action ends the process
    configure_logging()
    collect_in_small_steps()
    refuse_before_start(config)
    try:
        folder = DataFolder(config.data)
        folder.claim(os.getpid())
    except RuntimeError as error:  # another live server holds the folder
        raise PatronError(str(error)) from None
    except OSError as error:  # a full disk said only "No space left on device" (an outside probe)
        where = error.filename or config.data / "serve.pid"
        raise PatronError(f"cannot start: cannot write {where} ({error.strerror}); free space on the data "
                          f"folder's disk, or check its permissions") from None
    try:
        return asyncio.run(_serve(config, demo))
    finally:
        folder.release(os.getpid())


async def _serve(config: ServeConfig, demo: int) -> int:
    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await server.start()
    except BaseException:  # close what did start (the gRPC port, Ray) before the error is told
        await server.stop(grace=0)
        raise
    gc.collect()
    gc.freeze()  # Ray's, gRPC's and the coordinator's state, kept until the end
    for signum in (signal.SIGTERM, signal.SIGINT):  # after Ray's start-up, which installs its own
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_tokens)
    if _reloads_asked:  # during the start: the file may have changed since it was read
        server.reload_tokens()
    _banner(server)
    counts = loop.create_task(_live_counts(server))
    if demo and config.tls_cert:  # its client would need the CA of --tls-cert and a name in it for 127.0.0.1
        _say(f"patron: no demo load with TLS: send one with `patron send --generate {demo}` and PATRON_TLS_CA "
             f"(docs/operations.md)")
    elif demo and (day := await _empty(server)):
        threading.Thread(target=_demo_load, args=(f"127.0.0.1:{server.port}", demo, server, day),
                         daemon=True).start()
    watching = loop.create_task(_ray_watched(server, stop))
    await stop.wait()
    # what the watch saw, not what is dead now: a SIGTERM to the whole group ends the raylet too (a review)
    lost = watching.result() if watching.done() else ""
    watching.cancel()
    _say(f"patron: {lost} of serve's Ray died; stopping, to be started again" if lost
         else "patron: stopping; batches in flight finish first")
    counts.cancel()
    await server.stop(grace=30)
    if unclosed := server.unclosed:  # it said "closed cleanly" with a node away (an outside probe)
        _say(f"patron: stopped; shards {', '.join(map(str, unclosed))} did not answer the close (down, or their "
             f"node away): each keeps what it last committed, which the next start opens")
    else:
        _say("patron: stopped; every shard closed cleanly")
    return 1 if lost else 0


async def _ray_watched(server: Server, stop: asyncio.Event) -> str:
    """Serve's own Ray dying (its raylet killed, say) leaves no shard to run: serve stops with a
    failure, so that a service manager (`Restart=on-failure`) starts it again. Returns what died."""
    while not (lost := server.ray_lost()):
        await asyncio.sleep(RAY_WATCH_SECONDS)
    log.error("serve's Ray died; stopping with a failure so that it is started again", extra={"dead": lost})
    stop.set()
    return lost


_reloads_asked: list[int] = []


def _reload_asked(signum: int, frame: object) -> None:
    """SIGHUP before serve is ready for it: kept, and the tokens read again once started. Left to
    its default, it ended serve, which systemd does not restart (`systemctl reload` right after a
    start: an outside probe)."""
    _reloads_asked.append(signum)


def _say(text: str) -> None:
    """Banners and counts are for the person at the terminal: stdout. stderr carries only the
    JSON log lines."""
    print(text, flush=True)


async def _empty(server: Server) -> str:
    """The business day of a data folder with no members, or "": the demo load is for a new
    folder, and a second `make run` must not add its transactions again to the same members."""
    statuses = await server.coordinator.status()
    members = sum(status.members for status in statuses)
    if members:
        emptied = "`make reset` empties ./data" if Path(server.config.data).resolve() == Path("data").resolve() else (
            "start with a new --data folder")
        _say(f"patron: no demo load: {server.config.data} already has {members:,} members "
             f"(the demo runs only on an empty data folder; {emptied})")
        return ""
    return min(status.business_day for status in statuses)


def patron_command() -> str:
    """How to run patron from where this one was started: `patron` when that is what the shell
    finds, else this install's own command, as a path from here where it lies below (`make run`:
    .venv/bin/patron). The banner said .venv/bin/patron wherever serve ran (an outside probe)."""
    own = Path(sys.executable).parent / "patron"
    found = shutil.which("patron")
    if not own.is_file() or (found is not None and Path(found).resolve() == own.resolve()):
        return "patron"  # an install without its own script (a system one): the shell's
    try:
        here = own.absolute().relative_to(Path.cwd())
    except ValueError:
        here = own.absolute()
    return shlex.quote(str(here) if here.parent != Path() else f"./{here}")  # in .venv/bin itself: ./patron


def _banner(server: Server) -> None:
    config, coordinator = server.config, server.coordinator
    host = config.host
    lines = [
        f'patron is serving "{coordinator.programme.rules.programme}" (rules version {coordinator.rules.version}) '
        f"with {counted(coordinator.layout.shards, 'shard')}",
        f"  gRPC     {host}:{server.port}   Ingest, Members, Wallet, Events, Admin, grpc.health.v1, reflection",
        f"  metrics  http://{host}:{server.metrics_port}/metrics" if server.metrics_port else "  metrics  off",
        *_node_gateways(server),
        f"  data     {config.data} ({config.durability} durability; midnight: {config.midnight}; members in "
        f"memory: {f'at most {config.hot_members:,} per shard' if config.hot_members else 'all'})",
        f"  auth     {_security(server)}",
        "Send a batch, look at a member" + _client_needs(server) + ":",
        f"  {patron_command()} send --address {host}:{server.port} --generate 10000",
        f"  {patron_command()} member show MEMBER_ID --address {host}:{server.port}",
        f"Live counts every {COUNTS_EVERY:.0f} s; Ctrl-C stops (batches in flight finish first).",
    ]
    _say("\n".join(lines))


def _node_gateways(server: Server) -> list[str]:
    """With --gateway-per-node: where each other node's gateway listens (the same API)."""
    if server.gateways is None:
        return []
    lines = []
    for node, (address, port, metrics_port) in server.gateways.addresses.items():
        host = address if server.config.host in ("0.0.0.0", "::") else server.config.host
        metrics = f"http://{host}:{metrics_port}/metrics" if metrics_port else "off"
        lines.append(f"  node {node}: gateway {host}:{port}   metrics {metrics}")
    return lines


def _client_needs(server: Server) -> str:
    """What the banner's commands need beyond the address: as printed they failed on a server
    with tokens and TLS (an outside probe)."""
    config = server.config
    needs = (["PATRON_TOKEN=<a token of the tokens file>"] if server.tokens else []) + (
        ["PATRON_TLS_CA=<the CA that signed --tls-cert>"] if config.tls_cert else []) + (
        ["PATRON_TLS_CERT=<a client certificate --tls-client-ca signed>", "PATRON_TLS_KEY=<its key>"]
        if config.tls_client_ca else [])  # without them every command failed (an auth probe)
    return f" (with {', '.join(needs[:-1])}{' and ' if len(needs) > 1 else ''}{needs[-1]} in the environment)" if (
        needs) else ""


def _security(server: Server) -> str:
    config = server.config
    tls = "TLS" + (" with client certificates" if config.tls_client_ca else "") if config.tls_cert else "no TLS"
    if not server.tokens:
        return f"NONE: no tokens, so only {config.host} may call; {tls}"
    roles = sorted(set(server.tokens.values()))
    return f"bearer tokens for {', '.join(roles)} ({len(server.tokens)} tokens); {tls}"


class AcceptedSinceStart:
    """Transactions accepted since serve started, from each shard's count since the shard started:
    summed as they were, the line went backwards when a shard restarted (a cluster probe). A count
    lower than the last look's is a restarted shard's, all of it new."""

    def __init__(self) -> None:
        self.total = 0
        self.seen: dict[int, int] = {}

    def add(self, counts: dict[int, int]) -> int:
        for shard, count in counts.items():
            before = self.seen.get(shard, 0)
            self.total += count - before if count >= before else count
            self.seen[shard] = count
        return self.total


async def _live_counts(server: Server) -> None:
    last, last_at, since_start = 0, time.monotonic(), AcceptedSinceStart()
    while True:
        await asyncio.sleep(COUNTS_EVERY)
        statuses = await server.coordinator.status_as_seen()
        if not all(s.ready for s in statuses):  # the next line once every shard answers (the log says why)
            continue
        accepted = since_start.add({s.shard: s.transactions for s in statuses})
        now = time.monotonic()
        rate = (accepted - last) / (now - last_at)
        last, last_at = accepted, now
        _say(f"patron: {sum(s.members for s in statuses):,} members, {accepted:,} transactions accepted "
             f"({rate:,.0f}/s), business day {min(s.business_day for s in statuses)}")


def _demo_load(address: str, count: int, server: Server, day: str) -> None:
    """Stream a generated workload dated on the business day (today, unless --start-date said
    otherwise), so a newcomer sees the counts move."""
    from bench.workload import Workload, generate
    from client import PatronClient

    workload = Workload(transactions=count, members=max(count // 10, 100), days=1, start=day,
                        id_prefix=f"D{int(time.time())}-")
    member = next(generate(workload))["member_id"]
    token = next((t for t, role in server.tokens.items() if role in ("ingest", "admin")), None)
    try:
        with PatronClient(address, token=token) as client:
            for _ in client.stream(client.batches(generate(workload), 1000)):
                pass
    except grpc.RpcError as error:  # stopped half-way (Ctrl-C): the server is going anyway
        log.warning("the demo load stopped", extra={"code": error.code().name, "error": error.details()})
        return
    _say(f"patron: the demo load of {count:,} transactions is in; look at a member with\n"
         f"  {patron_command()} member show {member} --address {address} --ledger")
