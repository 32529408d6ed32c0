"""The gateway on uvicorn in a thread, on a loopback port (for the cache and tracing tests): the gateway tests'
server, whose ledger is read once the writer thread has drained."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _gateway_helpers import Server as _GatewayServer


class Server(_GatewayServer):
    def ledger(self) -> list[dict[str, Any]]:
        self.gateway.ledger.close()  # drain the writer thread (the app's lifespan restarts nothing after this)
        return super().ledger()
