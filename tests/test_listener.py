"""The gateway's port is its own: gRPC's default SO_REUSEPORT let a second `patron serve` share a
port in use, and the kernel then split the tills' calls between two data folders."""

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health

from actors.config import ServeConfig
from actors.listener import grpc_server, listen
from engine.errors import PatronError


def test_a_gateway_cannot_open_a_port_another_grpc_server_listens_on(tmp_path: Path):
    async def second_gateway_on_a_taken_port() -> None:
        first = grpc.aio.server()  # gRPC's defaults, SO_REUSEPORT on, as another server would have
        port = first.add_insecure_port("127.0.0.1:0")
        await first.start()
        try:
            config = ServeConfig(data=tmp_path, grpc_port=port)
            server = grpc_server(config, {}, {}, health.aio.HealthServicer(), lambda: True)
            with pytest.raises(PatronError, match=f"--grpc-port {port}: cannot listen on 127.0.0.1:{port}"):
                listen(server, config, "127.0.0.1")
        finally:
            await first.stop(0)

    asyncio.run(second_gateway_on_a_taken_port())
