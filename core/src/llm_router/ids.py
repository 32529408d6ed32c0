"""Request ids: unique, cheap to make (no system call per id, unlike ``uuid4``)."""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["new_request_id"]

_counter = itertools.count()
_prefix = ""
_pid = -1


def new_request_id() -> str:
    """32 hex characters: 16 random per process (drawn again after a fork) and a 16-digit counter."""
    global _prefix, _pid, _counter
    if _pid != os.getpid():  # a forked worker must not repeat its parent's ids
        _pid, _prefix, _counter = os.getpid(), secrets.token_hex(8), itertools.count()
    return f"{_prefix}{next(_counter):016x}"
