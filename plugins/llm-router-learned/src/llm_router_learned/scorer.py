"""The ``learned_quality`` scorer: each candidate's quality for this prompt, predicted by a trained artifact.

Policy::

    score:
      - learned_quality: {artifact: router.npz, models: {gpt-4-1106-preview: openai/gpt-4.1}}
      - cost
      - latency
    preferences: {learned_quality: 0.6, cost: 0.3, latency: 0.1}

A candidate is matched to a model of the artifact through ``models`` (dataset name → catalogue id), else by
its catalogue id, else by its model name. Known candidates get their own prediction. A candidate the artifact
does not know gets, by ``fallback``:

* ``prior`` (the default): its catalogue prior for the request's task, p = ``model.quality_for(task)``;
* ``difficulty``: its prior scaled by the prompt's predicted hardness, q̂ = 1 − (1 − p)·min(h(x), h_max), with
  h(x) = (1 − d(x)) / (1 − d̄), d(x) the mean prediction over the artifact's models for this prompt and d̄ the
  same mean over the training prompts (the artifact's ``mean_prediction``). On a prompt of average difficulty
  h = 1 and q̂ = p; on a harder one the unknown models' scores fall and the gap between two of them,
  (p_a − p_b)·h, grows, so a cost weight sends hard prompts to the one with the higher prior. h_max =
  1 / (1 − p_low), p_low the lowest prior among this request's unknown candidates: where that candidate
  reaches 0, the hardness stops growing, so every score stays in [0, 1] and no gap shrinks on harder prompts.
  (Clipping each score at 0 instead let the stronger model's score keep falling after the weaker one's had
  stopped, so the hardest prompts went to the cheaper model: cross-dataset APGR 0.449, against 0.591 with
  the bound; see docs/learned-routing.md.);
* ``mean``: the mean prediction over the known models for this prompt, d(x) (the same for every unknown
  candidate);
* ``zero``: 0.

Scores are the predicted probabilities themselves (absolute, in [0, 1], not rescaled to the candidates), so
the trade-off against ``cost`` is the same for every prompt: with two candidates and a cost weight w, the
stronger model is chosen when its predicted gain exceeds w / (1 − w) (times the cost scores' gap).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from llm_router import Candidate, ComponentContext, RoutingContext, Scorer
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

Fallback = Literal["prior", "difficulty", "mean", "zero"]
FALLBACKS: tuple[str, ...] = get_args(Fallback)


class LearnedQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: Path = Field(description="the trained artifact (.npz); relative to the policy file's folder")
    models: dict[str, str] = Field(
        default_factory=dict, description="dataset model name → catalogue id, for names that differ"
    )
    fallback: Fallback = Field(
        default="prior",
        description=(
            "score of a candidate the artifact does not know: prior = its catalogue prior p for the task; "
            "difficulty = 1 − (1 − p)·min(h, h_max), h = (1 − d) / (1 − d̄), d = this prompt's mean prediction "
            "over the artifact's models, d̄ = that mean over the training prompts, h_max = 1 / (1 − the lowest "
            "prior among the request's unknown candidates) so scores stay in [0, 1] (p on an average prompt, "
            "lower on harder ones, with wider gaps between unknown models); mean = d; zero = 0"
        ),
    )
    cache_size: int = Field(default=1024, ge=0, description="prompts whose predictions are kept (LRU)")


class LearnedQualityScorer(Scorer):
    """Predicted quality of each candidate for this prompt, from a trained artifact."""

    name = "learned_quality"
    Config: ClassVar[type[BaseModel]] = LearnedQualityConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        from .model import QualityModel  # numpy and scipy load with the first scorer, not with the plugin

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
        self.mean_prediction = self.model.mean_prediction
        """d̄ for ``fallback: difficulty`` (from the artifact's header, else its training scores)."""

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

    def hardness(self, pred: np.ndarray) -> float:
        """h = (1 − d) / (1 − d̄) for a prompt whose predictions over the artifact's models are ``pred``:
        1 on a prompt of average difficulty for the training data, larger on harder ones, ≥ 0."""
        spare = 1.0 - self.mean_prediction
        if spare <= 1e-9:  # every training answer was perfect: no scale to compare with
            return 1.0
        return (1.0 - float(pred.mean())) / spare

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        cols = [self._column_of(c) for c in candidates]
        priors = [
            c.model.quality_for(ctx.task) if col is None else None for c, col in zip(candidates, cols, strict=True)
        ]
        unknown = [p for p in priors if p is not None]
        need = len(unknown) < len(cols) or (bool(unknown) and self.cfg.fallback in ("mean", "difficulty"))
        pred = self.predictions(ctx.request.last_user_text()) if need else None
        h = 1.0
        if self.cfg.fallback == "difficulty" and unknown and pred is not None:
            h = self.hardness(pred)
            worst = 1.0 - min(unknown)
            if worst > 0:  # stop where the lowest prior reaches 0: scores stay in [0, 1], gaps never shrink
                h = min(h, 1.0 / worst)
        out: list[float] = []
        for col, prior in zip(cols, priors, strict=True):
            if col is not None and pred is not None:
                out.append(float(pred[col]))
            elif prior is None or self.cfg.fallback == "zero":
                out.append(0.0)
            elif self.cfg.fallback == "prior":
                out.append(prior)
            elif self.cfg.fallback == "difficulty":
                out.append(min(1.0, max(0.0, 1.0 - (1.0 - prior) * h)))
            else:  # mean
                out.append(float(pred.mean()) if pred is not None else prior)
        return out
