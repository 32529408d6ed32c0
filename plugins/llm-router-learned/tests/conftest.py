"""Small synthetic routing data, generated here (the tests never read ../shared)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

MATH = ["integral", "equation", "solve", "derivative", "algebra", "matrix", "prime", "sum", "root", "theorem"]
CHAT = ["hello", "weather", "movie", "recipe", "holiday", "friend", "music", "garden", "coffee", "book"]
CODE = ["python", "function", "bug", "compile", "class", "loop", "variable", "array", "string", "recursion"]


def make_rows(n: int, seed: int, models: tuple[str, ...] = ("big", "small", "mid")) -> list[dict[str, Any]]:
    """Math: only big is right; chat: everyone is right; code: big and mid are right. Costs: big 10x."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        task, words = [("math", MATH), ("chat", CHAT), ("code", CODE)][i % 3]
        prompt = " ".join(rng.choice(words) for _ in range(8)) + f" please {rng.choice(CHAT + MATH + CODE)}"
        right = {"math": {"big"}, "chat": {"big", "small", "mid"}, "code": {"big", "mid"}}[task]
        scores = {m: float(m in right) if rng.random() > 0.1 else float(m not in right) for m in models}
        costs = {"big": 1e-3, "mid": 3e-4, "small": 1e-4}
        rows.append(
            {
                "id": f"{seed}-{i}",
                "prompt": prompt,
                "task": task,
                "scores": scores,
                "costs": {m: costs[m] for m in models},
            }
        )
    return rows


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("routing")
    write(d / "synth-train.jsonl", make_rows(150, 1))
    write(d / "synth-test.jsonl", make_rows(60, 2))
    write(d / "pair-train.jsonl", make_rows(150, 3, ("big", "small")))
    write(d / "pair-test.jsonl", make_rows(60, 4, ("big", "small")))
    (d / "pair.models.json").write_text(
        json.dumps(
            {
                "models": {
                    "big": {"input_per_mtok": 10, "output_per_mtok": 30},
                    "small": {"input_per_mtok": 0.5, "output_per_mtok": 0.5},
                },
                "strong": "big",
                "weak": "small",
            }
        ),
        encoding="utf-8",
    )
    return d


@pytest.fixture(scope="session")
def artifact(data_dir: Path) -> Path:
    from llm_router_learned.data import load_rows
    from llm_router_learned.model import train

    path = data_dir / "synth.npz"
    train(load_rows([data_dir / "synth-train.jsonl"]), method="stack").save(path)
    return path
