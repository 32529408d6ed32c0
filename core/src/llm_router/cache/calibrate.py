"""``llm-router calibrate cache``: pick the semantic cache's threshold from labelled paraphrase pairs.

The model of a cache: the first text of a pair was asked before, the second is asked now; it is a hit when their
embeddings' cosine similarity reaches the threshold. Over pairs labelled paraphrase (1) or not (0):

- hit rate: the share of paraphrase pairs that hit (answers rightly reused);
- false-hit rate: the share of non-paraphrase pairs that hit (a wrong answer served).

The threshold is the lowest one whose false-hit rate on the calibration half stays at or under the target; the
other half (held out, split at random with a fixed seed) reports what to expect on new data.

Data: JSON Lines ``{"text1", "text2", "label"}`` or a tab-separated file with a header naming the two texts and
the label the way MRPC (``Quality``, ``#1 String``, ``#2 String``), PAWS (``sentence1``, ``sentence2``,
``label``) or QQP (``question1``, ``question2``, ``is_duplicate``) do.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Calibration", "Pair", "calibrate", "load_pairs", "rates"]

Pair = tuple[str, str, int]

_TSV_COLUMNS = (
    ("#1 String", "#2 String", "Quality"),
    ("sentence1", "sentence2", "label"),
    ("question1", "question2", "is_duplicate"),
    ("text1", "text2", "label"),
)


def load_pairs(path: str | Path) -> list[Pair]:
    """The labelled pairs of ``path`` (see the module docstring); ``ValueError`` naming the line that is wrong."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".jsonl", ".json"):
        return _jsonl(p, text)
    return _tsv(p, text)


def _label(value: Any, where: str) -> int:
    if str(value).strip() in ("0", "1", "True", "False", "true", "false"):
        return 1 if str(value).strip() in ("1", "True", "true") else 0
    raise ValueError(f"{where}: label must be 0 or 1, got {value!r}")


def _jsonl(p: Path, text: str) -> list[Pair]:
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            a, b = str(row["text1"]), str(row["text2"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f'{p}:{n}: expected {{"text1", "text2", "label"}} ({exc})') from None
        pairs.append((a, b, _label(row.get("label"), f"{p}:{n}")))
    return pairs


def _tsv(p: Path, text: str) -> list[Pair]:
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quotechar='"'))
    if not rows:
        return []
    header = rows[0]
    for a_col, b_col, label_col in _TSV_COLUMNS:
        if {a_col, b_col, label_col} <= set(header):
            ia, ib, il = header.index(a_col), header.index(b_col), header.index(label_col)
            break
    else:
        raise ValueError(f"{p}:1: the header names no known columns (MRPC, PAWS, QQP or text1/text2/label)")
    pairs = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise ValueError(f"{p}:{n}: {len(row)} columns, the header has {len(header)}")
        pairs.append((row[ia], row[ib], _label(row[il], f"{p}:{n}")))
    return pairs


def similarities(embed: Callable[[Sequence[str]], Any], pairs: Sequence[Pair], batch: int = 32) -> list[float]:
    """The cosine similarity of each pair's two texts."""
    import numpy as np

    sims: list[float] = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        a = np.asarray(embed([x[0] for x in chunk]), dtype=np.float32)
        b = np.asarray(embed([x[1] for x in chunk]), dtype=np.float32)
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        sims.extend(float(x) for x in (a * b).sum(axis=1))
    return sims


def rates(sims: Sequence[float], labels: Sequence[int], threshold: float) -> tuple[float, float]:
    """(hit rate over paraphrase pairs, false-hit rate over the others) at ``threshold``."""
    pos = [s for s, y in zip(sims, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(sims, labels, strict=True) if y == 0]
    hit = sum(s >= threshold for s in pos) / len(pos) if pos else 0.0
    false = sum(s >= threshold for s in neg) / len(neg) if neg else 0.0
    return hit, false


def pick_threshold(sims: Sequence[float], labels: Sequence[int], target_false_hit: float) -> float:
    """The lowest threshold whose false-hit rate is at most ``target_false_hit``."""
    neg = sorted((s for s, y in zip(sims, labels, strict=True) if y == 0), reverse=True)
    if not neg:
        return min(sims)
    allowed = int(target_false_hit * len(neg))  # false hits the target allows
    if allowed >= len(neg):
        return min(sims)
    return min(1.0, neg[allowed] + 1e-6)


@dataclass(frozen=True)
class Calibration:
    threshold: float
    target_false_hit: float
    calibration_pairs: int
    holdout_pairs: int
    calibration: tuple[float, float]
    holdout: tuple[float, float]
    sweep: list[tuple[float, float, float]]

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": round(self.threshold, 6),
            "target_false_hit_rate": self.target_false_hit,
            "calibration": {
                "pairs": self.calibration_pairs,
                "hit_rate": self.calibration[0],
                "false_hit_rate": self.calibration[1],
            },
            "holdout": {"pairs": self.holdout_pairs, "hit_rate": self.holdout[0], "false_hit_rate": self.holdout[1]},
            "sweep": [{"threshold": t, "hit_rate": h, "false_hit_rate": f} for t, h, f in self.sweep],
        }


def calibrate(
    pairs: Sequence[Pair], embed: Callable[[Sequence[str]], Any], target_false_hit: float, *, seed: int = 0
) -> Calibration:
    """Split ``pairs`` in half at random, pick the threshold on one half, report both (see the module)."""
    if len(pairs) < 4 or len({y for _, _, y in pairs}) < 2:
        raise ValueError("calibration needs at least 4 pairs, with both labels")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    sims_all = similarities(embed, [pairs[i] for i in order])
    labels = [pairs[i][2] for i in order]
    half = len(order) // 2
    cal_s, cal_y, hold_s, hold_y = sims_all[:half], labels[:half], sims_all[half:], labels[half:]
    threshold = pick_threshold(cal_s, cal_y, target_false_hit)
    sweep = [(t, *rates(hold_s, hold_y, t)) for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)]
    return Calibration(
        threshold=threshold,
        target_false_hit=target_false_hit,
        calibration_pairs=half,
        holdout_pairs=len(order) - half,
        calibration=rates(cal_s, cal_y, threshold),
        holdout=rates(hold_s, hold_y, threshold),
        sweep=sweep,
    )
