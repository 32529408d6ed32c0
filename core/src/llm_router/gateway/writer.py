"""A queue of ledger rows and the thread that writes them in batches (both ledgers, SQLite and PostgreSQL).

:meth:`QueuedWriter.record` never blocks (a ``SimpleQueue.put``); the writer thread takes up to ``batch`` rows
at a time, hands them to :meth:`QueuedWriter.write_batch`, then lingers ``linger_s`` so rows gather into fewer,
larger transactions. :meth:`QueuedWriter.close` queues a stop mark behind the rows already queued and waits for
the thread: every row recorded before it is written (or spooled) first.
"""

from __future__ import annotations

import operator
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

__all__ = ["QueuedWriter"]

_STOP = object()


class QueuedWriter:
    """Base of the ledgers' writers: subclasses give :meth:`write_batch` and may give :meth:`opened`,
    :meth:`idle` (called every ``idle_s`` without rows; ``None``: never) and :meth:`finished`."""

    thread_name = "llm-router-ledger"
    idle_s: float | None = None

    def __init__(self, row_type: type[Any], *, batch: int, linger_s: float) -> None:
        self.batch = batch
        self.linger_s = linger_s
        self.written = 0
        """Rows written to the ledger."""
        self.failed = 0
        """Rows lost (could not be written, nor spooled)."""
        self._values = operator.attrgetter(*(f.name for f in fields(row_type)))  # a row's values, column order
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def record(self, row: Any) -> None:
        """Queue ``row`` (never blocks)."""
        self._queue.put(row)

    def close(self, timeout: float | None = 30) -> None:
        """Write every queued row, then stop the writer."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    # for subclasses

    def write_batch(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write ``rows`` (value tuples in column order); count them in ``written`` or ``failed``."""
        raise NotImplementedError

    def opened(self) -> None:
        """The writer thread starts."""

    def idle(self) -> None:
        """No row came for ``idle_s`` seconds."""

    def finished(self) -> None:
        """The writer thread ends (every row taken); called even when it fails."""

    # the thread

    def _run(self) -> None:
        self.opened()
        try:
            stop = False
            while not stop:
                try:
                    item = self._queue.get(timeout=self.idle_s)
                except queue.Empty:
                    self.idle()
                    continue
                rows, stop = self._take(item)
                if rows:
                    self.write_batch(rows)
                if not stop and self.linger_s:
                    time.sleep(self.linger_s)
        finally:
            self.finished()

    def _take(self, item: Any) -> tuple[list[tuple[Any, ...]], bool]:
        """``item`` and the rows queued behind it, up to ``batch``; and whether the stop mark came."""
        rows: list[tuple[Any, ...]] = []
        while True:
            if item is _STOP:
                return rows, True
            rows.append(self._values(item))
            if len(rows) >= self.batch:
                return rows, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rows, False
