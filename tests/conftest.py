"""Real components for integration tests: one local Ray per test session, gRPC servers on
127.0.0.1 port 0, LMDB in temporary folders."""

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

DISK_TEMP = Path(tempfile.gettempdir())
"""Where temporary folders go on a disk: for a test of what the kernel counts as a file's pages
(RssFile: LMDB's pages on a disk; on tmpfs they are shared memory), use the disk_tmp_path fixture."""


def _temporary_folders_in_memory(memory: Path = Path("/dev/shm"), room: int = 4 << 30) -> None:
    """tmp_path and tempfile's folders in memory (tmpfs) where there is room and TMPDIR does not
    say otherwise: every LMDB commit, midnight date and report syncs its files, and on a disk each
    sync waits for it (a report file written and synced took 9 ms, a year of midnight runs seconds).
    No test checks what a power cut leaves (a kill -9 leaves the page cache), so each checks the same
    on tmpfs; the files stay real, in real LMDB."""
    if "TMPDIR" not in os.environ and memory.is_dir() and shutil.disk_usage(memory).free >= room:
        tempfile.tempdir = str(memory)


_temporary_folders_in_memory()


@pytest.fixture
def disk_tmp_path() -> Iterator[Path]:
    """A temporary folder on a disk, whatever tmp_path is on (see DISK_TEMP); removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="patron-disk-", dir=DISK_TEMP))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


EXAMPLE_RULES = Path(__file__).parents[1] / "examples" / "rules.toml"
TEST_DAY = "2026-11-17"
LONG_RUN = 300.0
"""Seconds a test waits for a midnight run of months of dates: on a loaded machine a year took over
the client's own 30 s (a CI run beside other work), and the run went on without its caller."""
"""The business day a new served test starts on, whatever the real date: a test that dates its
transactions must not start failing as the calendar moves past them (too_late, in_future).
A restart on an existing data folder keeps the folder's own business day."""


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import os

    import ray

    from actors.server import ray_environment

    os.environ.update(ray_environment())  # the tests' Ray calls shards as `patron serve`'s does
    os.environ.pop("PATRON_SHARD_PRIORITY", None)  # the shards' workers inherit it: the tests check the default
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 << 20, namespace="patron-tests",
             logging_level="WARNING")
    yield
    ray.shutdown()


class RunningServer:
    """A patron server on its own event loop thread, as `patron serve` runs it."""

    def __init__(self, config: object) -> None:
        from actors.server import Server

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="patron-server", daemon=True)
        self.thread.start()
        self.server = Server(config)
        try:
            self.port = self._run(self.server.start(), timeout=120)
        except BaseException:
            self._run(self.server.stop(grace=0), timeout=60)  # what did start, as `patron serve` does
            self._close_loop()
            raise
        self.address = f"127.0.0.1:{self.port}"

    def _run(self, coroutine: object, timeout: float) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, grace: float = 5) -> None:
        self._run(self.server.stop(grace=grace), timeout=grace + 60)
        self._close_loop()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def two_shard_server(tmp_path_factory: pytest.TempPathFactory, name: str, **options: object) -> Iterator[RunningServer]:
    """For a module-scoped fixture: one server with two shards and the business day pinned to
    TEST_DAY (unless `options` say otherwise), shared by the module's tests and stopped at its end.
    Its tests must not share member or transaction ids: each starts from what those before left."""
    from actors.config import ServeConfig
    from engine.calendar import parse_day

    options = {"rules": EXAMPLE_RULES, "grpc_port": 0, "metrics_port": -1, "midnight": "manual", "shards": 2,
               "start_date": parse_day(TEST_DAY), **options}
    running = RunningServer(ServeConfig(data=tmp_path_factory.mktemp(name) / "data", **options))
    yield running
    running.stop()


@pytest.fixture
def start_server(ray_session: None, tmp_path: Path) -> Iterator:
    """start_server(**config) -> RunningServer; every server is stopped at the end."""
    from actors.config import ServeConfig
    from engine.calendar import parse_day

    running: list[RunningServer] = []

    def start(**options: object) -> RunningServer:
        options.setdefault("data", tmp_path / "data")
        options.setdefault("rules", EXAMPLE_RULES)
        options.setdefault("grpc_port", 0)
        options.setdefault("metrics_port", -1)
        options.setdefault("midnight", "manual")
        options.setdefault("start_date", parse_day(TEST_DAY))
        server = RunningServer(ServeConfig(**options))
        running.append(server)
        return server

    yield start
    for server in running:
        if server.thread.is_alive():
            server.stop()


def restored(server: RunningServer, start: object, checkpoint: str, **options: object) -> RunningServer:
    """Stop `server`, bring its data folder back to `checkpoint` with `patron restore`, and start a
    server on it again with `start` (the start_server fixture) and `options`."""
    from cli.main import main

    data = server.server.config.data
    server.stop()
    with pytest.raises(SystemExit) as done:
        main(["restore", "--data", str(data), "--checkpoint", checkpoint])
    assert done.value.code == 0
    return start(data=data, **options)  # type: ignore[operator]


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator:
    """serve_process(data, *args, rules=None) -> ServeProcess; each is killed at the end,
    so a failing test leaves no server (and no Ray cluster) behind."""
    from tests.process import ServeProcess

    started: list[ServeProcess] = []

    def start(data: Path, *args: str, rules: Path | None = None, cwd: Path | None = None,
              wait: bool = True) -> ServeProcess:
        process = ServeProcess(data, *args, rules=rules, cwd=cwd, wait=wait)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill_everything()
