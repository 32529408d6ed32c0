"""The plugin hands its embedding back-ends to the core (register_embedders), for the semantic cache."""

from __future__ import annotations

import numpy as np
import pytest
from llm_router.plugins import PluginHost
from llm_router_classify import embeddings


def test_registers_every_backend_of_its_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []

    def factory(threads: int):  # a back-end added to the registry (as model2vec or e5 are)
        made.append(threads)
        return lambda texts: np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setitem(embeddings._factories, "test-backend", factory)
    found = PluginHost().embedders()
    assert found["e5"][0] == "classify"
    assert found["test-backend"][0] == "classify"
    embed = found["test-backend"][1](3)
    assert embed(["a", "b"]).shape == (2, 4)
    assert made == [3]
    embeddings._embedders.pop(("test-backend", 3), None)
