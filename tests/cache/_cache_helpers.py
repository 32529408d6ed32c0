"""The gateway on uvicorn in a thread, on a loopback port (for the cache and tracing tests)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from llm_router.gateway.ledger import rows


class Server:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.gateway = app.state.gateway
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("the gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def ledger(self) -> list[dict[str, Any]]:
        self.gateway.ledger.close()  # drain the writer thread (the app's lifespan restarts nothing after this)
        return list(rows(self.gateway.ledger.path))
