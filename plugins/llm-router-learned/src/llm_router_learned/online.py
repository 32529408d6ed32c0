"""The ``online_quality`` scorer: each model's quality for this prompt, learned online from feedback.

Policy::

    score:
      - online_quality: {explore: 0.05, state_file: learner.npz, save_every: 100}
      - cost
    preferences: {online_quality: 0.7, cost: 0.3}

A contextual bandit with one arm per model (disjoint LinUCB, Li et al. 2010; or Thompson sampling over the
same posterior). The context φ(x) is the learned scorer's 64-d static prompt embedding (model2vec, PyPI
``tokenlearn-static-model``) plus a constant 1. Each arm is a ridge regression of the *residual* r − base(x)
on φ(x), where base(x) is where the learner starts: the trained ``artifact``'s prediction for the models it
knows (``learned_quality``'s artifact), else the catalogue's quality prior for the request's task. So before
any feedback the scorer gives exactly the prior (or the offline router's predictions), and each rating moves
only the rated model's estimate.

* estimate (exploit): q̂ = base(x) + θᵀφ(x), θ = A⁻¹b, A = λI + Σ φφᵀ, b = Σ (r − base)·φ;
* width: s = √(φᵀA⁻¹φ);
* on an exploring decision, ``linucb`` scores q̂ + α·s, ``thompson`` scores q̂ + α·s·z, z ~ N(0, 1) per
  candidate (the exact posterior sample of θᵀφ for one context); when one exceeds 1, all are divided by the
  largest (clipping at 1 would tie every uncertain model at 1 and hand the tie to the cheapest).

``explore`` bounds the share of decisions that explore: a decision explores only while the explored share so
far is below it (0 never explores: the scorer then serves the frozen estimate); every other decision ranks by
the estimate, clipped to [0, 1].

Learning: the scorer hears its own router's ``on_decision`` (it parks the request id with the prompt's
features, each candidate's base and the chosen model) and ``on_feedback`` (the rating of that request: the
model that answered, ``feedback.model_id`` when given, gets the update). Feedback for a request id the learner
never saw, one older than ``ttl_s``, or one already rated raises :class:`llm_router.FeedbackError` (the
gateway's ``/v1/feedback`` answers 404). A feedback without a rating teaches nothing.

State lives behind :class:`~llm_router_learned.online_store.OnlineStore`: the router's state store's when it
offers one (a method ``online_store(name, ttl_s, max_pending)`` returning an ``OnlineStore``), fleet-wide on
Redis with ``state: {backend: redis}`` (:mod:`llm_router_learned.online_redis`), else in memory. With
``state_file`` the arms are imported at start-up when the file exists and exported every ``save_every``
ratings (in a worker thread); :meth:`OnlineQualityScorer.export`, :meth:`~OnlineQualityScorer.import_file` and
:meth:`~OnlineQualityScorer.reset` do it on demand (rolling back = importing an older export, or resetting).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from llm_router import Candidate, ComponentContext, FeedbackError, RoutingContext, Scorer, hookimpl
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np
    from llm_router import Feedback, RouteRequest, RoutingDecision

    from .model import QualityModel
    from .online_store import OnlineStore, Pending

FEATURES = "static64+bias"
DIM = 65


class OnlineQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["linucb", "thompson"] = Field(
        default="thompson", description="how an exploring decision scores: upper confidence bound or a posterior sample"
    )
    explore: float = Field(default=0.05, ge=0, le=1, description="at most this share of decisions explores")
    alpha: float = Field(default=1.0, gt=0, description="width of the exploration bonus (in posterior std devs)")
    ridge: float = Field(
        default=1.0, gt=0, description="λ: how many ratings' worth the starting estimate (the base) is worth"
    )
    artifact: Path | None = Field(
        default=None,
        description="start from this learned_quality artifact's predictions (relative: to the policy's folder)",
    )
    models: dict[str, str] = Field(
        default_factory=dict, description="the artifact's model name → catalogue id, for names that differ"
    )
    state_file: Path | None = Field(
        default=None, description="arms imported at start-up when it exists, exported every save_every ratings"
    )
    save_every: int = Field(default=0, ge=0, description="ratings between exports to state_file (0: on demand only)")
    ttl_s: float = Field(default=86_400.0, gt=0, description="how long a decision waits for its feedback")
    max_pending: int = Field(default=100_000, ge=1, description="decisions kept waiting for feedback at most")
    seed: int | None = Field(default=None, description="seed of the Thompson draws (reproducible evaluations)")
    cache_size: int = Field(default=1024, ge=0, description="prompts whose features are kept (LRU)")


class OnlineQualityScorer(Scorer):
    """Quality learned online from feedback (see the module docstring)."""

    name = "online_quality"
    Config: ClassVar[type[BaseModel]] = OnlineQualityConfig

    def __init__(self, config: BaseModel, context: ComponentContext, store: OnlineStore | None = None) -> None:
        from .online_store import MemoryOnlineStore

        super().__init__(config, context)
        assert isinstance(config, OnlineQualityConfig)
        self.cfg = config
        # the router's state store may keep the learner's state too (a shared backend): it offers
        # ``online_store(name, ttl_s, max_pending)``; else the arms live in this process
        factory = getattr(context.state, "online_store", None)
        shared = factory(context.name, config.ttl_s, config.max_pending) if callable(factory) else None
        plugin_link = getattr(context.state, "plugin_link", None)  # state: {backend: redis}
        if shared is None and store is None and callable(plugin_link):
            from .online_redis import RedisOnlineStore

            shared = RedisOnlineStore(plugin_link(f"online:{context.name}"), config.ttl_s, config.max_pending)
        self.store: OnlineStore = store or shared or MemoryOnlineStore(config.ttl_s, config.max_pending)
        self.artifact: QualityModel | None = None
        self.column: dict[str, int] = {}
        if config.artifact is not None:
            self._load_artifact(
                config.artifact if config.artifact.is_absolute() else context.policy_dir / config.artifact
            )
        self.state_file = None
        if config.state_file is not None:
            sf = config.state_file
            self.state_file = sf if sf.is_absolute() else context.policy_dir / sf
            if self.state_file.exists():
                self.import_file(self.state_file)
        from .model import _Embedder

        _Embedder.encode(["warm up"])  # the embedding model loads at start-up, never on the event loop
        self.rng = random.Random(config.seed)
        self.decided = 0
        self.explored = 0
        self.ratings = 0
        self.learning = True
        """``False`` freezes the learner: feedback is checked but not learned from (evaluations use it)."""
        self._features: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._stash: OrderedDict[int, tuple[np.ndarray, dict[str, float]]] = OrderedDict()

    def _load_artifact(self, path: Path) -> None:
        from .model import QualityModel

        self.artifact = QualityModel.load(path)  # ArtifactError (a ValueError) names the file
        names = self.artifact.models
        self.column = {name: j for j, name in enumerate(names)}
        for name, cid in self.cfg.models.items():
            if name not in self.column:
                raise ValueError(f"{path}: 'models' maps {name!r}, which the artifact does not know ({names})")
            self.column[cid] = self.column[name]

    # ------------------------------------------------------------------------------------------------ features

    def warm(self, prompts: Sequence[str]) -> None:
        """Compute the features (and artifact predictions) of many prompts in one batch, ahead of routing
        them (evaluations do; the cache must hold them: ``cache_size``)."""
        from .model import _Embedder

        todo = [p for p in dict.fromkeys(prompts) if p not in self._features]
        for k in range(0, len(todo), 512):
            chunk = todo[k : k + 512]
            emb = _Embedder.encode(chunk)
            preds = self.artifact.predict_matrix(chunk) if self.artifact is not None else None
            for i, p in enumerate(chunk):
                self._keep(p, emb[i], None if preds is None else preds[i])

    def _keep(self, prompt: str, emb: np.ndarray, pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        import numpy as np

        entry = (np.concatenate(([1.0], emb.astype(np.float64))), pred)
        if self.cfg.cache_size:
            self._features[prompt] = entry
            while len(self._features) > self.cfg.cache_size:
                self._features.popitem(last=False)
        return entry

    def features(self, prompt: str) -> tuple[np.ndarray, np.ndarray | None]:
        """φ(prompt) and the artifact's predictions for it (``None`` without an artifact), cached."""
        hit = self._features.get(prompt)
        if hit is not None:
            self._features.move_to_end(prompt)
            return hit
        from .model import _Embedder

        pred = self.artifact.predict_matrix([prompt])[0] if self.artifact is not None else None
        return self._keep(prompt, _Embedder.encode([prompt])[0], pred)

    def _base(self, candidate: Candidate | Any, task: str, pred: np.ndarray | None) -> float:
        if pred is not None:
            col = self.column.get(candidate.model.id, self.column.get(candidate.model.model))
            if col is not None:
                return float(pred[col])
        return float(candidate.model.quality_for(task))

    # ------------------------------------------------------------------------------------------------ scoring

    def estimate(self, model_id: str, phi: np.ndarray, base: float) -> tuple[float, float]:
        """(q̂, s): the estimate and its width for one model on features ``phi``."""
        arm = self.store.arm(model_id)
        if arm is None:
            return base, math.sqrt(float(phi @ phi) / self.cfg.ridge)
        u = arm.A_inv @ phi
        return base + float(u @ arm.b), math.sqrt(max(float(phi @ u), 0.0))

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        phi, pred = self.features(ctx.request.last_user_text())
        base = {c.model.id: self._base(c, ctx.task, pred) for c in candidates}
        self.decided += 1
        explore = self.explored < self.cfg.explore * self.decided
        if explore:
            self.explored += 1
        out = []
        for c in candidates:
            q, s = self.estimate(c.model.id, phi, base[c.model.id])
            if explore:
                q += self.cfg.alpha * s * (self.rng.gauss(0.0, 1.0) if self.cfg.algorithm == "thompson" else 1.0)
            out.append(max(0.0, q))
        top = max(out, default=0.0)
        if top > 1.0:  # scaled, not clipped: optimistic scores above 1 keep their order (no ties at 1)
            out = [q / top if explore else min(1.0, q) for q in out]
        self._stash[id(ctx.request)] = (phi, base)
        while len(self._stash) > 1024:
            self._stash.popitem(last=False)
        return out

    # ------------------------------------------------------------------------------------------------ learning

    @hookimpl
    def on_decision(self, decision: RoutingDecision, request: RouteRequest) -> None:
        stash = self._stash.pop(id(request), None)
        if stash is None or self.name not in decision.weights:
            return
        from .online_store import Pending

        phi, base = stash
        self.store.remember(decision.request_id, Pending(phi, base, decision.selected.id, time.time()))

    @hookimpl
    def on_feedback(self, feedback: Feedback) -> Awaitable[None] | None:
        atake = getattr(self.store, "atake", None)
        if atake is not None:  # a shared store: the rating is taken once, fleet-wide (a Redis round trip)
            return self._learn_shared(feedback, atake)
        return self._learn(feedback, self.store.take(feedback.request_id, time.time()))

    async def _learn_shared(self, feedback: Feedback, atake: Any) -> None:
        waiting = self._learn(feedback, await atake(feedback.request_id, time.time()))
        if waiting is not None:
            await waiting

    def _learn(self, feedback: Feedback, pending: Pending | str) -> Awaitable[None] | None:
        rid = feedback.request_id
        if isinstance(pending, str):
            why = {
                "unknown": "is unknown to the online learner (not decided by this router with online_quality, "
                "or decided before a restart)",
                "expired": f"has expired (its decision is older than ttl_s = {self.cfg.ttl_s:g} s)",
                "rated": "was rated already",
            }[pending]
            raise FeedbackError(f"feedback for request id {rid!r}: the request {why}")
        model = feedback.model_id or pending.model_id
        if model not in pending.base:
            raise FeedbackError(
                f"feedback for request id {rid!r}: model {model!r} was not a candidate of that decision"
            )
        if feedback.rating is None or not self.learning:
            return None
        self.store.update(model, pending.features, feedback.rating - pending.base[model], DIM, self.cfg.ridge)
        self.ratings += 1
        if self.state_file is not None and self.cfg.save_every and self.ratings % self.cfg.save_every == 0:
            import anyio.to_thread

            return anyio.to_thread.run_sync(self.export, self.state_file)
        return None

    # ------------------------------------------------------------------------------------------------ state

    def export(self, path: Path | None = None) -> Path:
        """Write the arms to ``path`` (default: ``state_file``)."""
        target = path or self.state_file
        if target is None:
            raise ValueError("online_quality: no path to export to (give one, or set state_file in the policy)")
        self.store.export(Path(target), DIM, FEATURES)
        return Path(target)

    def import_file(self, path: Path) -> int:
        """Replace the arms by an export's (roll back to it); returns how many models it held."""
        return self.store.import_file(Path(path), DIM, FEATURES)

    def reset(self) -> None:
        """Forget everything learned (back to the base: the artifact or the catalogue priors)."""
        self.store.reset()
        self.decided = self.explored = self.ratings = 0
