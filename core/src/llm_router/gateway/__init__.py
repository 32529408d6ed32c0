"""The llm-router gateway: an OpenAI-compatible HTTP server that routes every request (``llm-router serve``).

Needs the ``gateway`` extra: ``pip install 'llm-router[gateway]'``.
"""

from __future__ import annotations

from .app import Gateway, create_app

__all__ = ["Gateway", "create_app"]
