"""A gateway on another node of the cluster (`patron serve --gateway-per-node`): a Ray actor
pinned to its node that serves the same gRPC API and its own /metrics there. It sends each
member's calls straight to that member's shard, through lanes of its own (in order, at most one
call in flight per shard, a bounded queue), exactly as `patron serve`'s own gateway does; so
any gateway answers any member. Admin calls (publish, midnight, checkpoints, status) belong to
the coordinator in `patron serve`: a node gateway passes them on to serve's gateway as they
are, with the caller's token. While a virtual shard moves, the coordinator tells every node
gateway to hold its writes and, once moved, where it lives now (`Routes`, actors/resharding.py)."""

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

import grpc
import msgspec
import ray
from grpc_health.v1 import health, health_pb2
from prometheus_client import start_http_server

from actors.auth import gateway_credentials
from actors.batch_outcome import original
from actors.config import ServeConfig
from actors.events_service import EventsService
from actors.gateway import IngestService, MembersService
from actors.lanes import Holds, Lane, ShardLanes
from actors.listener import SERVICE_NAMES, CallsInFlight, grpc_server, listen, stop_server
from actors.logs import collect_in_small_steps, configure_logging
from actors.metrics import Metrics
from actors.placement import labelled_nodes, node_hosts, pinned_to
from actors.wallet_service import WalletService
from engine.errors import PatronError, ReshardBusyError
from engine.programme import Programme
from engine.validation import load_rules
from proto import patron_pb2 as pb
from storage.folder import Layout

__all__ = ["GatewayPlan", "NodeGateway", "NodeGateways", "Routes"]

log = logging.getLogger("patron.gateway")
JOIN_LOOK_SECONDS = 10.0
"""How often serve looks for labelled nodes that joined, to start a gateway there."""
HOLD_SECONDS = 10.0
"""How long a move waits for every node gateway to hold its writes before it gives up (undone)."""


class Routes(msgspec.Struct):
    """What a node gateway routes by, as the coordinator last said: the higher `generation` wins,
    whatever order the coordinator's calls arrive in."""

    generation: int
    layout: Layout
    shards: list[str]
    """The shard actors' Ray names, by shard."""
    holding: list[int] = []
    """Virtual shards whose writes wait (one moving)."""
    behind: list[int] = []
    """Shards behind the rules in force (a publish their restart cut short): no batch goes to
    them until they have taken the version (`Coordinator.behind`)."""


class GatewayPlan:
    """What a node gateway needs to start, and to start again after its node comes back (then
    with the routes of the health call that starts it: the layout may have changed since)."""

    def __init__(self, config: ServeConfig, tokens: dict[str, str], routes: Routes,
                 rules: dict[int, str], version: int, admin: str) -> None:
        self.config, self.tokens, self.routes = config, tokens, routes
        self.rules, self.version = rules, version
        """Every published version's text, and the one in force."""
        self.admin = admin
        """serve's own gateway, for Admin calls."""


class KnownRules:
    """The published rules, as RuleVersions reads them from a data folder (it is not on this node)."""

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts
        self.rules = "the rules patron serve sent to this gateway"

    def published_rules(self, version: int) -> str:
        if version not in self.texts:
            raise OSError(f"rules version {version} was not sent to this gateway")
        return self.texts[version]


class ShardRouter(ShardLanes):
    """What the gateway's services use of the coordinator, for a gateway away from it."""

    def __init__(self, plan: GatewayPlan, metrics: Metrics) -> None:
        self.config = plan.config
        self.metrics = metrics
        self.folder = KnownRules(plan.rules)  # shared: versions sent later land in both
        self.lanes: list[Lane] = []
        self.resharding = Holds(self)
        self.generation = -1
        self.route(plan.routes)
        self.published(plan.version, plan.rules[plan.version])

    def route(self, routes: Routes) -> None:
        """Route by these from now on, unless newer ones came first; new shards get lanes."""
        if routes.generation <= self.generation:
            return
        config = self.config
        self.generation, self.layout = routes.generation, routes.layout
        for shard in range(len(self.lanes), len(routes.shards)):
            self.lanes.append(Lane(ray.get_actor(routes.shards[shard]), shard, config.in_flight_per_shard,
                                   config.queue_per_shard))
        self.resharding.hold(frozenset(routes.holding))
        self.behind = frozenset(routes.behind)

    def published(self, version: int, text: str) -> None:
        """The version now in force."""
        self.folder.texts[version] = text
        self.programme = Programme(load_rules(text))
        self.metrics.know_coupons([coupon.id for coupon in self.programme.rules.coupons])


@ray.remote(max_restarts=-1, max_task_retries=0, enable_task_events=False)
class NodeGateway:
    """Started by `start` (again after a restart: Ray keeps the actor's constructor arguments)."""

    def __init__(self, plan: GatewayPlan) -> None:
        configure_logging()
        collect_in_small_steps()  # as serve's own gateway does
        self.plan = plan
        self.metrics = Metrics()
        self.checker = health.aio.HealthServicer()
        self.calls = CallsInFlight()
        self.router: ShardRouter | None = None
        self.server: grpc.aio.Server | None = None
        self.events: EventsService | None = None
        self.ingest: IngestService | None = None
        self.ports = (0, 0)
        self._http: Any = None
        self._admin: grpc.aio.Channel | None = None

    async def start(self) -> tuple[str, int, int]:
        """(node address, gRPC port, metrics port); starting a started gateway only answers."""
        if self.server is None:
            await self._start()
        return ray.util.get_node_ip_address(), *self.ports

    async def _start(self) -> None:
        plan, config = self.plan, self.plan.config
        self.router = router = ShardRouter(plan, self.metrics)
        self._admin = grpc.aio.insecure_channel(plan.admin) if not config.tls_cert else grpc.aio.secure_channel(
            plan.admin, gateway_credentials(config.tls_cert, config.tls_key, config.tls_client_ca))
        self.events = EventsService(router)
        self.ingest = IngestService(router, config.max_batch)
        servicers = {"Ingest": self.ingest,
                     "Members": MembersService(router, config.max_batch),
                     "Events": self.events, "Wallet": WalletService(router)}
        server = grpc_server(config, plan.tokens, servicers, self.checker, lambda: True, self.calls,
                             (forwarded(pb.DESCRIPTOR.services_by_name["Admin"], self._admin, self.calls),))
        port = listen(server, config, config.host)
        await server.start()
        self.events.start()
        metrics_port = 0
        if config.metrics_port >= 0:
            self._http, _ = start_http_server(config.metrics_port, addr=config.host, registry=self.metrics.registry)
            metrics_port = self._http.server_port
        self.server, self.ports = server, (port, metrics_port)
        log.info("node gateway serving", extra={"port": port, "metrics_port": metrics_port})

    async def route(self, routes: Routes, drain: int = -1) -> int:
        """Route by `routes` (when newer than those it has). With `drain` (a move holds a virtual
        shard on that shard): answers once every write sent there before has been answered, with
        how many of them failed (the move is then undone, as for serve's gateway)."""
        if routes.generation > self.plan.routes.generation:
            self.plan.routes = routes
        if self.router is None:  # not serving yet: it will start with these routes
            return 0
        self.router.route(routes)
        if drain < 0:
            return 0
        lane = self.router.lanes[drain]
        failures = lane.failures
        await lane.drained()
        return lane.failures - failures

    async def serving(self, every_shard: bool, routes: Routes, tokens: dict[str, str] | None = None) -> int:
        """Health as `patron serve` sees its shards, every second, with the routes and tokens now: a
        gateway Ray started again after its node came back starts serving here, by the current layout.
        Answers the rules version it has (one started again has its first plan's, and is sent
        the versions since)."""
        if tokens is not None and tokens != self.plan.tokens:  # serve reloaded them (SIGHUP), or this
            self.plan.tokens.clear()  # gateway was started again with its first plan's: in place, where
            self.plan.tokens.update(tokens)  # its interceptor reads them
        await self.route(routes)
        if self.server is None:
            await self._start()
        status = health_pb2.HealthCheckResponse.SERVING if every_shard else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *SERVICE_NAMES):
            await self.checker.set(service, status)
        return self.plan.version

    async def published(self, version: int, text: str) -> None:
        self.plan.rules[version] = text
        if version > self.plan.version:
            self.plan.version = version
            if self.router is not None:
                self.router.published(version, text)

    async def stop(self, grace: float) -> None:
        """NOT_SERVING, finish the batches in flight, then close."""
        await self.checker.enter_graceful_shutdown()
        if self.ingest is not None:
            self.ingest.stopping = True
        if self.events is not None:
            await self.events.stop_streams()
        if self.server is not None:
            await stop_server(self.server, self.calls, grace)
        if self.events is not None:
            await self.events.close()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._admin is not None:
            await self._admin.close()


class NodeGateways:
    """In `patron serve`: a node gateway on every labelled node but serve's own (whose gateway is
    serve's), kept told of health and of each publish, stopped with serve."""

    def __init__(self, config: ServeConfig, coordinator: Any, tokens: dict[str, str], port: int) -> None:
        self.config, self.coordinator, self.tokens, self.port = config, coordinator, tokens, port
        self.actors: dict[str, Any] = {}
        self.addresses: dict[str, tuple[str, int, int]] = {}
        """node name -> (node address, gRPC port, metrics port)."""
        self.generation = 0
        """Of the routes last sent (`Routes`)."""
        self._next_look = time.monotonic() + JOIN_LOOK_SECONDS
        self.away: set[str] = set()
        """Nodes that joined on another machine while serve listens on a loopback address: told once."""

    async def start(self) -> None:
        await self._start_on(self._other_nodes())
        self.coordinator.published_hooks.append(self._published)
        self.coordinator.resharding.others = self

    def _other_nodes(self) -> list[str]:
        """Every live labelled node but serve's own, by name."""
        here = ray.get_runtime_context().get_node_id()
        return [name for name, node in sorted(labelled_nodes().items()) if node != here]

    async def _start_on(self, names: list[str]) -> None:
        coordinator, config = self.coordinator, self.config
        host = config.host if config.host not in ("0.0.0.0", "::") else ray.util.get_node_ip_address()
        folder = coordinator.folder
        rules = {int(path.stem[1:]): path.read_text(encoding="utf-8") for path in folder.rules.glob("v*.toml")}
        plan = GatewayPlan(config, self.tokens, self.routes(), rules, coordinator.rules.version,
                           f"{host}:{self.port}")
        actors = {name: NodeGateway.options(num_cpus=0, **pinned_to(name)).remote(plan) for name in names}
        answers = await asyncio.gather(*(actor.start.remote() for actor in actors.values()), return_exceptions=True)
        failed = {name: original(answer) for name, answer in zip(actors, answers, strict=True)
                  if isinstance(answer, BaseException)}
        if failed:
            for actor in actors.values():
                ray.kill(actor, no_restart=True)
            raise PatronError(_not_started(failed, set(names) & set(_on_this_machine())))
        self.actors.update(actors)
        self.addresses.update(zip(actors, answers, strict=True))

    async def join_new_nodes(self) -> list[str]:
        """Gateways on labelled nodes that joined since serve started (scaling out: a node added,
        then shards rebalanced onto it); only one started was given one (an outside probe)."""
        new = [name for name in self._other_nodes() if name not in self.actors and name not in self.away]
        away = set(away_on_loopback(self.config.host, socket.gethostname(), node_hosts())) if new else set()
        for name in sorted(away.intersection(new)):
            log.error("no gateway for a node that joined: it is on another machine and serve listens on a "
                      "loopback address (--host); restart serve with --host 0.0.0.0", extra={"node": name})
            self.away.add(name)
        new = [name for name in new if name not in away]
        if new:
            await self._start_on(new)
            for name in new:
                log.info("a gateway started on a node that joined", extra={
                    "node": name, "port": self.addresses[name][1], "metrics_port": self.addresses[name][2]})
        return new

    def routes(self) -> Routes:
        """The coordinator's layout and holds, as the next generation."""
        coordinator = self.coordinator
        self.generation += 1
        return Routes(self.generation, coordinator.layout,
                      [coordinator.shard_name(shard) for shard in range(coordinator.layout.shards)],
                      sorted(coordinator.resharding.holding), sorted(coordinator.behind))

    async def hold(self, source: int) -> bool:
        """Every node gateway holds what serve's gateway holds, and answers once what it sent to
        `source` before has been answered; whether any of that failed. ReshardBusyError when one
        does not answer in time: moving on would let it write to the source after the export."""
        routes, actors = self.routes(), dict(self.actors)  # a gateway may join meanwhile
        answers = await asyncio.gather(*(_within(actor.route.remote(routes, source), HOLD_SECONDS)
                                         for actor in actors.values()))
        silent = [name for name, answer in zip(actors, answers, strict=True) if answer is None]
        if silent:
            raise ReshardBusyError(f"the gateway on node {', '.join(silent)} did not answer within {HOLD_SECONDS:g} s "
                                   f"(its node away or cut off from serve, or its writes to shard {source} slow); "
                                   f"the move was undone, nothing was lost; start it again once every node gateway "
                                   f"answers")
        return any(answers)

    async def route(self) -> None:
        """Every node gateway routes by the layout and holds now; one that does not answer gets
        them with the next health call (`serving`, every second), before it serves again."""
        routes = self.routes()
        await asyncio.gather(*(_within(actor.route.remote(routes)) for actor in self.actors.values()))

    async def serving(self, every_shard: bool) -> None:
        """Health and routes to every gateway; one behind on rules (started again by Ray) gets
        what it lacks. Every JOIN_LOOK_SECONDS, a gateway on each node that joined."""
        if time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + JOIN_LOOK_SECONDS
            try:
                await self.join_new_nodes()
            except Exception as error:  # looked for again at the next look
                log.warning("a gateway for a node that joined did not start", extra={"error": str(error)})
        actors, routes = list(self.actors.values()), self.routes()
        versions = await asyncio.gather(*(_within(actor.serving.remote(every_shard, routes, self.tokens))
                                          for actor in actors))
        current, folder = self.coordinator.rules.version, self.coordinator.folder
        for actor, version in zip(actors, versions, strict=True):
            for missing in range(version + 1, current + 1) if version is not None else ():
                with contextlib.suppress(OSError):
                    await _within(actor.published.remote(missing, folder.published_rules(missing)))

    async def _published(self, published: Any) -> None:
        """A gateway that does not answer now is sent the version when it answers `serving` again.
        The routes follow: a publish a shard's death cut short leaves that shard behind."""
        await asyncio.gather(*(_within(actor.published.remote(published.version, published.text))
                               for actor in self.actors.values()))
        await self.route()

    async def stop(self, grace: float) -> None:
        await asyncio.gather(*(_within(actor.stop.remote(grace), grace + 5) for actor in self.actors.values()))
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)


def _not_started(failed: dict[str, BaseException], here: set[str]) -> str:
    """One line: which node's gateway did not start, and why (Ray's traceback, with its colours,
    was all serve said: a cluster probe); a node on serve's own machine shares its ports."""
    said = "; ".join(f"on node {name}: {error if isinstance(error, PatronError) else repr(error)}"
                     for name, error in sorted(failed.items()))
    shared = sorted(here & set(failed))
    hint = (f" ({', '.join(shared)} {'is' if len(shared) == 1 else 'are'} on this machine, where serve's "
            f"own gateway holds its ports: give --grpc-port 0 and --metrics-port 0 for ports of each "
            f"gateway's own, which the banner lists)") if shared else ""
    return f"--gateway-per-node: a node's gateway did not start, {said}{hint}"


def _on_this_machine() -> list[str]:
    """The labelled nodes on serve's machine."""
    here = socket.gethostname()
    return [name for name, machine in node_hosts().items() if machine == here]


async def _within(call: Any, seconds: float = 2.0) -> Any:
    """A node gateway's answer, or None: one on a lost node must not hold up serve."""
    try:
        return await asyncio.wait_for(call, seconds)
    except Exception as error:
        log.debug("a node gateway did not answer", extra={"error": str(error)})
        return None


def refuse_loopback_elsewhere(host: str) -> None:
    """Before anything starts: PatronError when a labelled node is on another machine and the
    gateways would listen on a loopback `host` (see `away_on_loopback`)."""
    away = away_on_loopback(host, socket.gethostname(), node_hosts())
    if away:
        raise PatronError(f"--gateway-per-node with --host {host}: {', '.join(away)} "
                          f"{'is a node' if len(away) == 1 else 'are nodes'} on another machine, where a "
                          f"gateway on that machine's own loopback would reach no client and could not "
                          f"forward admin calls to this one; give --host 0.0.0.0 (with --tokens) or an "
                          f"address of this machine the nodes reach")


def away_on_loopback(host: str, here: str, machines: dict[str, str]) -> list[str]:
    """The nodes (by name) on another machine than serve's (`here`: its host name, as `machines`
    gives each node's) when `host` is a loopback address: a gateway there would listen on that
    machine's own loopback, and forward admin calls to it, not to serve (docs/operations.md,
    "A gateway per node")."""
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        return []
    return sorted(name for name, machine in machines.items() if machine != here)


def forwarded(service: Any, channel: grpc.aio.Channel, calls: CallsInFlight) -> grpc.GenericRpcHandler:
    """Every (unary) method of `service`, passed as bytes to the same method behind `channel`,
    with the caller's authorization and deadline; its answer or its error comes back as it was."""
    handlers = {}
    for method in service.methods:
        call = channel.unary_unary(f"/{service.full_name}/{method.name}")

        async def forward(request: bytes, context: grpc.aio.ServicerContext, call: Any = call) -> bytes:
            metadata = [(key, value) for key, value in context.invocation_metadata() or ()
                        if key == "authorization"]
            try:
                return await call(request, metadata=metadata, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
            return b""  # not reached: abort raises

        handlers[method.name] = calls.counted(grpc.unary_unary_rpc_method_handler(forward))
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
