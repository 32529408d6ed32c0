"""Routing data: JSONL rows ``{"id", "prompt", "task", "scores": {model: q}, "costs"?: {model: USD}}``, the
optional sidecar ``<name>.models.json`` with prices per million tokens, the stratified hold-out split, and
costs (real per-answer costs where the rows carry them, else price × (⌈len/4⌉ input + 256 output tokens))."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Row = dict[str, Any]
OUT_TOKENS = 256
"""Output tokens assumed for every answer when only prices are known (and the ``max_tokens`` the evaluation
passes to the router, so its cost estimates use the same assumption)."""
SEED = 20251125


def load_rows(paths: Sequence[str | Path]) -> list[Row]:
    rows: list[Row] = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or "prompt" not in row or not isinstance(row.get("scores"), dict):
                    raise ValueError(f"{path}:{n}: a routing row needs 'prompt' and 'scores'")
                rows.append(row)
    if not rows:
        raise ValueError(f"no rows in {', '.join(map(str, paths))}")
    return rows


def sidecar_for(path: str | Path) -> Path:
    """``data/llmrouter-train.jsonl`` → ``data/llmrouter.models.json`` (the name up to the first '-')."""
    p = Path(path)
    stem = p.name.split(".")[0]
    for cand in (p.with_name(f"{stem}.models.json"), p.with_name(f"{stem.rsplit('-', 1)[0]}.models.json")):
        if cand.exists():
            return cand
    return p.with_name(f"{stem.rsplit('-', 1)[0]}.models.json")


def load_prices(path: str | Path) -> dict[str, Any] | None:
    """The sidecar's ``models`` (prices per million tokens) and its other keys, or ``None`` without one."""
    side = sidecar_for(path)
    if not side.exists():
        return None
    with side.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def split(rows: Sequence[Row], frac: float = 0.25, seed: int = SEED) -> tuple[list[Row], list[Row]]:
    """Stratified by ``task``: for every task, round(frac × n) rows (fixed seed) are held out."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_task[str(r.get("task", ""))].append(i)
    rng = np.random.default_rng(seed)
    hold: set[int] = set()
    for task in sorted(by_task):
        idx = np.array(by_task[task])
        rng.shuffle(idx)
        hold.update(idx[: round(frac * len(idx))].tolist())
    return [r for i, r in enumerate(rows) if i not in hold], [r for i, r in enumerate(rows) if i in hold]


def models_of(rows: Sequence[Row]) -> list[str]:
    models: list[str] = []
    for r in rows:
        for m in r["scores"]:
            if m not in models:
                models.append(m)
    return models


def mean_scores(rows: Sequence[Row]) -> dict[str, float]:
    """Each model's mean score over the rows that score it (e.g. catalogue quality priors)."""
    models = models_of(rows)
    q = quality_matrix(rows, models)
    return {m: float(np.nanmean(q[:, j])) for j, m in enumerate(models)}


def row_key(row: Row) -> str:
    """A row's identity for overlap checks: its ``id``, else its prompt."""
    return f"id:{row['id']}" if "id" in row else f"prompt:{row['prompt']}"


def quality_matrix(rows: Sequence[Row], models: Sequence[str]) -> np.ndarray:
    return np.array([[float(r["scores"].get(m, np.nan)) for m in models] for r in rows], dtype=np.float64)


def token_estimate(prompts: Sequence[str]) -> np.ndarray:
    return np.array([max(1, -(-len(p) // 4)) for p in prompts], dtype=np.float64)


def cost_matrix(rows: Sequence[Row], models: Sequence[str], prices: dict[str, Any] | None) -> np.ndarray:
    """Realised cost of each model's answer: the row's ``costs`` where present, else from the prices."""
    if all("costs" in r for r in rows):
        return np.array([[float(r["costs"][m]) for m in models] for r in rows], dtype=np.float64)
    if prices is None:
        raise ValueError("the rows carry no 'costs' and there is no <name>.models.json with prices")
    tok = token_estimate([str(r["prompt"]) for r in rows])
    pin = np.array([prices[m]["input_per_mtok"] for m in models])
    pout = np.array([prices[m]["output_per_mtok"] for m in models])
    out: np.ndarray = (tok[:, None] * pin[None, :] + OUT_TOKENS * pout[None, :]) / 1e6
    return out


def fit_prices(
    rows: Sequence[Row], models: Sequence[str], prices: dict[str, Any] | None
) -> dict[str, dict[str, float]]:
    """Prices per million tokens for the catalogue: the sidecar's, else a least-squares fit of the rows' real
    costs, cost ≈ a + b · input_tokens (b → input price; a spread over the assumed 256 output tokens)."""
    if prices is not None:
        return {m: {k: float(prices[m][k]) for k in ("input_per_mtok", "output_per_mtok")} for m in models}
    tok = token_estimate([str(r["prompt"]) for r in rows])
    cost = cost_matrix(rows, models, None)
    a_mat = np.stack([np.ones_like(tok), tok], axis=1)
    coef, *_ = np.linalg.lstsq(a_mat, cost, rcond=None)
    out: dict[str, dict[str, float]] = {}
    for j, m in enumerate(models):
        a, b = float(coef[0, j]), float(coef[1, j])
        if a < 0 or b < 0:  # degenerate fit: one flat price
            b = float(cost[:, j].sum() / (tok + OUT_TOKENS).sum())
            a = b * OUT_TOKENS
        out[m] = {"input_per_mtok": b * 1e6, "output_per_mtok": a / OUT_TOKENS * 1e6}
    return out
