"""CLI commands (filled in below)."""

from typing import Any


def register(cli: Any) -> None:
    return None
