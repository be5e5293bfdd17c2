"""`patron serve` assembled: Ray, the coordinator and its shards, the gRPC gateway with
health and reflection, and the metrics endpoint. Stopping drains in-flight batches first."""

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import ray
from grpc_health.v1 import health, health_pb2
from prometheus_client import start_http_server

from actors.auth import check_server_files, is_loopback, load_tokens, tokens_from_environment
from actors.batch_wire import say_if_not_compiled
from actors.config import ServeConfig
from actors.coordinator import Coordinator, other_shards
from actors.events_service import EventsService
from actors.gateway import AdminService, IngestService, MembersService
from actors.listener import SERVICE_NAMES, CallsInFlight, grpc_server, listen, refuse_ports_in_use, stop_server
from actors.logs import ray_output_as_json
from actors.metrics import Metrics
from actors.node_gateway import NodeGateways, refuse_loopback_elsewhere
from actors.reaper import Reaper
from actors.wallet_service import WalletService
from engine.calendar import iso
from engine.errors import PatronError
from engine.programme import Programme
from engine.validation import load_rules, load_rules_file
from storage.folder import current_rules_of, serve_problem, stored_layout

__all__ = ["INLINE_CALL_BYTES", "SERVICE_NAMES", "Server", "ray_environment"]

log = logging.getLogger("patron.server")

INLINE_CALL_BYTES = 8 << 20
"""Arguments and answers of a Ray call up to this size travel inside the call itself, as Ray
does by default only below 100 KB; larger ones still go through Ray's object store. A group of
batches for a shard is about 130 KB for each batch of 1,000 transactions in it, and more than one
batch only up to actors/lanes.py GROUP_BYTES: through the store, each put and fetch cost the
raylet and the gateway more CPU than the copy they avoid (bench/RESULTS.md, "Calls to a shard
carry their batches")."""


def ray_environment() -> dict[str, str]:
    """What patron asks of Ray through its environment (Ray reads `RAY_<setting>` in every
    process it starts, so the raylet and the shards' workers inherit it from `patron serve`, or
    from `ray start` on a cluster). An operator's own value of a setting is kept."""
    wanted = {
        # patron sends nothing to Ray's usage statistics service; the head's small API server
        # that would report them still starts (Ray gives no way to leave it off)
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_max_direct_call_object_size": str(INLINE_CALL_BYTES),
    }
    return {name: os.environ.get(name, value) for name, value in wanted.items()}


def tokens_for(config: ServeConfig) -> dict[str, str]:
    """The tokens calls must carry; refused where a host other than loopback would go without."""
    tokens = load_tokens(config.tokens_file, tokens_from_environment())
    if config.tokens_file is not None and not tokens:
        # it started open to every local caller, which the operator giving --tokens did not ask for
        # (a reload that would leave no token is refused the same way)
        raise PatronError(f"{config.tokens_file} has no token: give it a line `role token` for each client "
                          f"(docs/operations.md), or leave out --tokens for a server only 127.0.0.1 may call")
    if not tokens and not is_loopback(config.host):
        raise PatronError(f"refusing to listen on {config.host} without authentication: give "
                          f"--tokens FILE or PATRON_TOKENS (only a loopback host may go without)")
    return tokens


def refuse_before_start(config: ServeConfig) -> None:
    """What can be told in a second, before Ray starts or the data folder is made: the tokens, the
    TLS files and the ports."""
    tokens_for(config)
    if config.tls_client_ca and not config.tls_cert:  # it served in plain text, asking for no certificate
        raise PatronError("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for over TLS")
    for flag, path in (("--tls-cert", config.tls_cert), ("--tls-key", config.tls_key),
                       ("--tls-client-ca", config.tls_client_ca)):
        if path is not None and not path.is_file():
            raise PatronError(f"{flag} {path}: no such file")
    if config.tls_cert and config.tls_key:
        check_server_files(config.tls_cert, config.tls_key, config.tls_client_ca)
    refuse_ports_in_use(config)
    if problem := serve_problem(config.data):
        raise PatronError(problem)
    if config.rules is None and not (config.data / "rules" / "current.json").exists():
        # said after Ray's start, it left a new folder behind (an outside probe)
        raise PatronError(f"{config.data} has no rules yet: start with --rules FILE")
    if problem := future_start_problem(config):
        raise PatronError(problem)
    if (layout := stored_layout(config.data)) and (problem := other_shards(config, layout)):
        raise PatronError(problem)  # said after Ray's start, 14-20 s later (an outside probe)


def future_start_problem(config: ServeConfig) -> str:
    """A new folder started on a day ahead refused its tills' sales until then (`too_late`) and kept
    that day, as a business day never goes back (an outside probe): a --start-date after tomorrow on
    the programme's clock is refused, as a midnight date is, unless `allow_future` (test systems).
    A folder that has a day passes --start-date over (with a warning, at the start)."""
    if not config.start_date or config.allow_future or (config.data / "layout.json").exists():
        return ""
    rules = (load_rules_file(config.rules) if config.rules is not None
             else load_rules(current_rules_of(config.data).text))
    calendar = Programme(rules).calendar
    tomorrow = calendar.day_of(int(time.time() * 1000)) + 1
    if config.start_date <= tomorrow:
        return ""
    return (f"--start-date {iso(config.start_date)} is after tomorrow ({iso(tomorrow)}) on the programme's clock "
            f"({calendar.zone}): a new folder on that business day would refuse as too_late every transaction "
            f"dated more than max_lateness_days before it, and keep that day. On a test system, allow it with "
            f"--allow-future")


class Server:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.health = health.aio.HealthServicer()
        self.coordinator = Coordinator(config, self.metrics, self._shards_answer)
        self.events = EventsService(self.coordinator)
        self.grpc: grpc.aio.Server | None = None
        self.calls = CallsInFlight()
        self.unclosed: list[int] = []
        """Shards that did not answer the close at the stop: `patron serve` says so."""
        self.ingest: IngestService | None = None
        self.port = 0
        self.metrics_port = 0
        self._own_ray = False
        self._reaper: Reaper | None = None
        self._started = False
        self._stopping = False
        self._http: Any = None
        self.tokens: dict[str, str] = {}
        self.gateways: NodeGateways | None = None
        """With --gateway-per-node: a gateway on every other node."""

    async def start(self) -> int:
        """Start everything; SERVING only once every shard has answered. Returns the gRPC port."""
        self.tokens = tokens_for(self.config)
        if not ray.is_initialized() and not self.config.ray_address:  # before Ray: see actors.reaper
            self._reaper = Reaper()
        self._own_ray = _start_ray(self.config)
        if self._reaper is not None:
            self._reaper.ray_started()
        if self.config.gateway_per_node:  # before any shard opens or rules are published
            refuse_loopback_elsewhere(self.config.host)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.grpc = self._grpc_server()
        self.port = listen(self.grpc, self.config, self.config.host)
        await self.grpc.start()
        await self.coordinator.start()
        if self.config.gateway_per_node:
            self.gateways = NodeGateways(self.config, self.coordinator, self.tokens, self.port)
            await self.gateways.start()
        if self._reaper is not None:  # by now Ray's agents are up
            self._reaper.started()
        self.events.start()
        if self.config.metrics_port >= 0:
            try:
                self._http, _ = start_http_server(self.config.metrics_port, addr=self.config.host,
                                                  registry=self.metrics.registry)
            except OSError as error:  # taken since the check before Ray's start
                raise PatronError(f"--metrics-port {self.config.metrics_port}: cannot listen on "
                                  f"{self.config.host} ({error.strerror})") from None
            self.metrics_port = self._http.server_port
        say_if_not_compiled(log)
        self._started = True
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float = 10.0) -> None:
        """NOT_SERVING first, so load balancers move away (for `drain_seconds` every call is still
        answered: the port closed at once, a probe never saw NOT_SERVING); then finish the batches
        in flight (new ones are refused), then close every shard's LMDB."""
        self._stopping = True
        await self.health.enter_graceful_shutdown()
        if self.config.drain_seconds and self._started:
            if self.gateways is not None:  # node gateways drain alike, their health told by serve's
                await self.gateways.serving(False)
            log.info("draining: health is NOT_SERVING, calls are still answered",
                     extra={"seconds": self.config.drain_seconds})
            await asyncio.sleep(self.config.drain_seconds)
        if self.ingest is not None:
            self.ingest.stopping = True
        await self.events.stop_streams()
        if self.gateways is not None:
            await self.gateways.stop(grace)
        if self.grpc is not None:
            await stop_server(self.grpc, self.calls, grace)
        await self.events.close()
        self.unclosed = await self.coordinator.close()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._own_ray:
            ray.shutdown()
        if self._reaper is not None:
            self._reaper.close()

    def ray_lost(self) -> str:
        """What of serve's own Ray has died (its raylet or GCS), or "" while it runs, or when Ray is a
        cluster's. Without them no shard runs again: serve stayed up `NOT_SERVING` for good, and a
        service manager restarting it on failure never did (an outside probe)."""
        node = ray._private.worker._global_node if self._own_ray and not self.config.ray_address else None
        if node is None:
            return ""
        dead = [f"{kind} (exit {process.returncode})" for kind, process in node.dead_processes()
                if kind in ("raylet", "gcs_server")]  # its log and dashboard processes are not needed
        return ", ".join(dead)

    def reload_tokens(self) -> None:
        """SIGHUP: the tokens file read again, so a token is added or retired without a restart
        (rotation: add the new token, move the clients to it, retire the old one). Node gateways
        take them within a second. A file with problems, or none left, changes nothing; a server
        started without tokens has no authentication to change (restart it with --tokens)."""
        if not self.tokens:
            log.error("the tokens were not reloaded: patron started without tokens, and calls are not "
                      "authenticated; restart it with --tokens FILE to turn authentication on")
            return
        if self.config.tokens_file is None:
            log.error("the tokens were not reloaded: they come from PATRON_TOKENS alone, which a running "
                      "process is not given again; rotate them with --tokens FILE, or by a restart")
            return
        try:
            tokens = load_tokens(self.config.tokens_file, tokens_from_environment())
        except PatronError as error:  # load_tokens names the file and the line, never a token
            log.error("the tokens were not reloaded; the ones in use are kept", extra={"error": str(error)})
            return
        if not tokens:
            log.error("the tokens were not reloaded: the file has none, and every call would be refused; "
                      "the ones in use are kept")
            return
        self.tokens.clear()  # in place: the interceptor and the node gateways' plan read this dict
        self.tokens.update(tokens)
        log.info("tokens reloaded", extra={"roles": dict(sorted(Counter(tokens.values()).items()))})

    async def wait(self) -> None:
        if self.grpc is not None:
            await self.grpc.wait_for_termination()

    def _grpc_server(self) -> grpc.aio.Server:
        coordinator = self.coordinator
        self.ingest = IngestService(coordinator, self.config.max_batch)
        servicers = {"Ingest": self.ingest,
                     "Members": MembersService(coordinator, self.config.max_batch),
                     "Admin": AdminService(coordinator), "Events": self.events, "Wallet": WalletService(coordinator)}
        return grpc_server(self.config, self.tokens, servicers, self.health, lambda: self._started, self.calls)

    async def _shards_answer(self, every_shard: bool) -> None:
        """Health follows the shards: NOT_SERVING while one is down or restarting (and once stopping)."""
        if self._started and not self._stopping:
            serving = health_pb2.HealthCheckResponse.SERVING
            await self._set_health(serving if every_shard else health_pb2.HealthCheckResponse.NOT_SERVING)
            if self.gateways is not None:
                await self.gateways.serving(every_shard)

    async def _set_health(self, status: int) -> None:
        # "" (what most probes ask) is the first to turn NOT_SERVING and the last to turn SERVING
        services = ("", *SERVICE_NAMES) if status != health_pb2.HealthCheckResponse.SERVING else (*SERVICE_NAMES, "")
        for service in services:
            await self.health.set(service, status)


def _start_ray(config: ServeConfig) -> bool:
    """An embedded local Ray unless one is running (tests) or --ray-address names a cluster.
    Ray's logs go through patron's JSON logging (configure_logging=False leaves the "ray"
    logger to the root handler), and what its workers print is turned into JSON lines."""
    if ray.is_initialized():
        return False
    # Ray prints forwarded worker output through this module function; replaced before
    # init, it covers worker lines and the raylet's error messages alike (Ray is pinned).
    ray._private.worker.print_to_stdstream = ray_output_as_json
    os.environ.update(ray_environment())
    logging.getLogger("ray").propagate = True  # Ray turns it off; patron's root handler writes JSON
    quiet = {"namespace": "patron", "configure_logging": False, "log_to_driver": True}
    with _workers_import_what_serve_imports():
        if config.ray_address:
            ray.init(address=config.ray_address, **quiet)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, object_store_memory=256 << 20, **quiet)
    return True


@contextlib.contextmanager
def _workers_import_what_serve_imports() -> Iterator[None]:
    """Ray puts the folder its driver runs in first on its workers' import path (for clusters whose
    machines share a layout). Started from a folder holding another patron's source (a checkout, a
    release being unpacked), the shards imported that code while serve ran its own, uncompiled
    there (an outside probe): Ray is started from the folder serve imports patron from, and the
    folder it was in is given back at once (paths crossing to actors are absolute: DataFolder)."""
    here = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)
    try:
        yield
    finally:
        os.chdir(here)
