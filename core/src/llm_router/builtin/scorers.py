"""Built-in scorers: quality for the task, cost and latency, each in [0, 1] and relative to the candidates.

* ``quality``: the model's quality prior for the request's task (``ModelInfo.quality``), scaled so the best
  candidate gets 1 and a candidate ``min_span`` (default 0.25) or more below it gets 0.
* ``cost``: the estimated cost of this request (counted input + expected output tokens at the model's
  price) on a log scale: the cheapest gets 1, one ``min_ratio`` (default 20×) or more times dearer gets 0.
* ``latency``: the estimated time to the last token (live measurements where the router has them, else the
  catalogue's priors), on a log scale: the fastest gets 1, ``min_ratio`` (default 4×) slower or more gets 0.

Relative scores make the weights mean what they say: ``cost: 0.3`` is 30 % of the decision, whatever the
absolute prices of the candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..components import Candidate, RoutingContext, Scorer
from ..hookspecs import hookimpl
from ._util import log_values, relative


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_span: Annotated[float, Field(gt=0, le=1)] = 0.25


class QualityScorer(Scorer):
    """Quality prior for the request's task, relative to the best candidate."""

    name = "quality"
    Config: ClassVar[type[BaseModel]] = QualityConfig

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        task = ctx.classification.task
        assert isinstance(self.config, QualityConfig)
        values = []
        for c in candidates:
            q = c.model.quality.get(task)
            values.append(c.model.quality_for(task) if q is None else q)
        return relative(values, min_span=self.config.min_span, higher_is_better=True)


class _LogScaleScorer(Scorer):
    """A candidate estimate on a log scale, the lowest = 1 and ``min_ratio`` times higher or more = 0."""

    estimate: ClassVar[str]
    """The :class:`Candidate` attribute scored."""
    floor: ClassVar[float]
    """Added before taking the log, so that zero (a free local model) is fine."""

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        min_ratio: float = getattr(self.config, "min_ratio")  # noqa: B009 - every subclass's Config has it
        attr = self.estimate
        values = log_values([getattr(c, attr) for c in candidates], floor=self.floor)
        return relative(values, min_span=math.log(min_ratio), higher_is_better=False)


class CostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_ratio: Annotated[float, Field(gt=1)] = 20.0


class CostScorer(_LogScaleScorer):
    """Estimated cost of this request, cheapest = 1, on a log scale."""

    name = "cost"
    Config: ClassVar[type[BaseModel]] = CostConfig
    estimate = "estimated_cost"
    floor = 1e-7


class LatencyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_ratio: Annotated[float, Field(gt=1)] = 4.0


class LatencyScorer(_LogScaleScorer):
    """Estimated time to the last token, fastest = 1, on a log scale."""

    name = "latency"
    Config: ClassVar[type[BaseModel]] = LatencyConfig
    estimate = "estimated_latency_ms"
    floor = 1.0


@hookimpl
def register_scorers(register: Callable[[type[Scorer]], None]) -> None:
    for cls in (QualityScorer, CostScorer, LatencyScorer):
        register(cls)
