"""Real services for tests: ``redis_server()`` (Debian's ``redis-server``) and ``postgres_server()``
(PostgreSQL's ``initdb`` and ``postgres``, as the ``postgres`` user when the tests run as root) on free
loopback ports, in temporary directories, stopped (and restartable on the same port) by the test.

Nothing here fakes a service: a test that claims a Redis property runs against Redis. A test needing a
service that is not installed is skipped with the command that installs it (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "RedisServer", "free_port", "postgres_server", "redis_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, up: bool, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not {'start' if up else 'stop'} on port {port}")


class RedisServer:
    """A ``redis-server`` process: ``url``; :meth:`stop` and :meth:`start` (same port, empty data unless it
    was saved) to inject an outage."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        assert exe is not None
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port, True, "redis-server")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # an abrupt outage, as a crash would be
            self.process.wait(10)
        self.process = None
        _wait_port(self.port, False, "redis-server")

    def cli(self, *args: str) -> str:
        """``redis-cli`` against this server (for assertions on what Redis holds)."""
        exe = shutil.which("redis-cli")
        assert exe is not None
        out = subprocess.run([exe, "-p", str(self.port), *args], capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free port; skipped when it is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="llmr-redis-") as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """A PostgreSQL cluster made by ``initdb`` in a temporary directory: ``url`` (trust auth on loopback);
    :meth:`stop` and :meth:`start` keep its data (an outage, not a loss)."""

    def __init__(self, bindir: Path, directory: Path) -> None:
        self.bindir = bindir
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> PostgresServer:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
                  str(self.data / "log"), "start")  # fmt: skip
        _wait_port(self.port, True, "postgres")
        return self

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        _wait_port(self.port, False, "postgres")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL on a free port; skipped when it is not installed."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    with tempfile.TemporaryDirectory(prefix="llmr-pg-") as tmp:
        server = PostgresServer(bindir, Path(tmp)).init().start()
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.stop()
