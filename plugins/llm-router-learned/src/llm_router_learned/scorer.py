"""The ``learned_quality`` scorer: each candidate's quality for this prompt, predicted by a trained artifact.

Policy::

    score:
      - learned_quality: {artifact: router.npz, models: {gpt-4-1106-preview: openai/gpt-4.1}}
      - cost
      - latency
    preferences: {learned_quality: 0.6, cost: 0.3, latency: 0.1}

A candidate is matched to a model of the artifact through ``models`` (dataset name → catalogue id), else by
its catalogue id, else by its model name. A candidate the artifact does not know gets its catalogue prior for
the request's task (``fallback: prior``, the default), the mean prediction over the known models for this
prompt (``fallback: mean``, a difficulty estimate), or 0 (``fallback: zero``).

Scores are the predicted probabilities themselves (absolute, in [0, 1], not rescaled to the candidates), so
the trade-off against ``cost`` is the same for every prompt: with two candidates and a cost weight w, the
stronger model is chosen when its predicted gain exceeds w / (1 − w) (times the cost scores' gap).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from llm_router import Candidate, ComponentContext, RoutingContext, Scorer
from pydantic import BaseModel, ConfigDict, Field

from .model import QualityModel


class LearnedQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: Path = Field(description="the trained artifact (.npz); relative to the policy file's folder")
    models: dict[str, str] = Field(
        default_factory=dict, description="dataset model name → catalogue id, for names that differ"
    )
    fallback: Literal["prior", "mean", "zero"] = Field(
        default="prior", description="score of a candidate the artifact does not know"
    )
    cache_size: int = Field(default=1024, ge=0, description="prompts whose predictions are kept (LRU)")


class LearnedQualityScorer(Scorer):
    """Predicted quality of each candidate for this prompt, from a trained artifact."""

    name = "learned_quality"
    Config: ClassVar[type[BaseModel]] = LearnedQualityConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LearnedQualityConfig)
        self.cfg = config
        path = config.artifact if config.artifact.is_absolute() else context.policy_dir / config.artifact
        self.model = QualityModel.load(path)  # ArtifactError is a ValueError: the router reports it
        self.path = path
        names = self.model.models
        self.column: dict[str, int] = {}
        for j, name in enumerate(names):
            self.column[name] = j
        for name, cid in config.models.items():
            if name not in self.column:
                raise ValueError(f"{path}: 'models' maps {name!r}, which the artifact does not know ({names})")
            self.column[cid] = self.column[name]
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _column_of(self, candidate: Candidate) -> int | None:
        col = self.column.get(candidate.model.id)
        if col is None:
            col = self.column.get(candidate.model.model)
        return col

    def predictions(self, prompt: str) -> np.ndarray:
        """Predicted quality of every artifact model for ``prompt`` (cached per prompt text)."""
        hit = self._cache.get(prompt)
        if hit is not None:
            self._cache.move_to_end(prompt)
            return hit
        pred: np.ndarray = self.model.predict_matrix([prompt])[0]
        if self.cfg.cache_size:
            self._cache[prompt] = pred
            if len(self._cache) > self.cfg.cache_size:
                self._cache.popitem(last=False)
        return pred

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        cols = [self._column_of(c) for c in candidates]
        pred = None if all(c is None for c in cols) else self.predictions(ctx.request.last_user_text())
        out: list[float] = []
        for cand, col in zip(candidates, cols, strict=True):
            if col is not None and pred is not None:
                out.append(float(pred[col]))
            elif self.cfg.fallback == "prior":
                out.append(cand.model.quality_for(ctx.task))
            elif self.cfg.fallback == "mean":
                out.append(float(self.predictions(ctx.request.last_user_text()).mean()))
            else:
                out.append(0.0)
        return out
