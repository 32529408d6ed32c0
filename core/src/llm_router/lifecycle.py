"""Lifecycle: the event loop behind the Router's synchronous methods."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["LoopThread"]


class LoopThread:
    """An event loop in a daemon thread, started on first use, that runs the async core for the sync
    façade: provider clients keep their connection pools between sync calls, and a router that is never
    closed does not keep the process alive."""

    def __init__(self) -> None:
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._portal is not None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run async ``fn(*args)`` on the loop (starting it if needed) and return its result."""
        with self._lock:
            if self._portal is None:
                self._start()
            portal = self._portal
        assert portal is not None
        return portal.call(fn, *args)

    def stop(self) -> None:
        """Stop the loop and join its thread (idempotent)."""
        with self._lock:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is not None and thread is not None:
            portal.call(portal.stop)
            thread.join(timeout=10)

    def _start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                async with BlockingPortal() as portal:
                    self._portal = portal
                    ready.set()
                    await portal.sleep_until_stopped()
            except BaseException as exc:  # pragma: no cover - loop start-up failure
                failure.append(exc)
                ready.set()
                raise

        thread = threading.Thread(target=anyio.run, args=(serve,), name="llm-router-loop", daemon=True)
        thread.start()
        ready.wait()
        if failure:  # pragma: no cover
            raise RuntimeError("the router's event loop did not start") from failure[0]
        self._thread = thread
