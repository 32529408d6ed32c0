"""The ``learned`` classifier: the offline model of :mod:`llm_router_classify.model` as a cascade stage.

* ``artifact: builtin`` (default) is the model shipped in this package (see ``artifacts/PROVENANCE.md``);
  ``artifact: examples`` trains a model at start-up on the ``examples`` of the taxonomy's tasks (a few per
  label are enough for topical labels; needs the ``[train]`` extra); any other value is a path to
  ``<name>.json`` + ``<name>.npz`` (relative paths are resolved against the policy's folder; the suffix may
  be left out).
* With ``artifact: examples`` and a task with fewer than ``few_shot_below`` (50) examples, the ``fewshot``
  model (:mod:`llm_router_classify.fewshot`) decides instead: on a few examples per label it beats a trained
  model of this kind (docs/classification.md#your-own-labels).
* ``label_map`` renames the model's labels to the policy's taxonomy, summing the probabilities of labels mapped
  to the same task. Default ``{general_qa: open_qa}``: Dolly's general_qa and open_qa cannot be told apart
  by the data (see docs/classification.md). Labels the taxonomy does not have are left out (their probability
  is not spread over the others, so the confidence stays honest).
* The confidence is the temperature-scaled softmax probability of the best label (after the mapping).
* Multi-turn: the latest user turn has weight 1, earlier user turns ``history_decay`` (0.3), 0.09, … and the
  structural features come from the latest turn only.
* Long prompts are truncated deliberately: instruction (text before the first blank line) first 600 chars;
  context head 300 + tail 100 chars as text, its full length as a feature.

numpy and the model are imported when a classifier is created, not when the plugin registers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

from llm_router import Classifier, ComponentContext, Prediction, TaskSpec
from llm_router.types import RouteRequest
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

    from .fewshot import FewShotClassifier
    from .model import Model

BUILTIN_ARTIFACT = Path(__file__).parent / "artifacts" / "default"

_cache: dict[tuple[str, float], Model] = {}
_cache_lock = threading.Lock()


def resolve_artifact(artifact: str, base: Path) -> Path:
    """The artifact path (without suffix) that ``artifact`` names: ``builtin`` or a path relative to ``base``."""
    if artifact == "builtin":
        return BUILTIN_ARTIFACT
    path = Path(artifact).expanduser()
    if not path.is_absolute():
        path = base / path
    return path.with_suffix("") if path.suffix in (".json", ".npz") else path


def load_artifact(path: str | Path) -> Model:
    """Load an artifact once per process (keyed by path and modification time): several routers share it."""
    from .model import Model

    p = Path(path)
    header = p.with_suffix(".json")
    key = (str(header.resolve()), header.stat().st_mtime if header.exists() else 0.0)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = Model.load(p)
            _cache[key] = model
        return model


def train_on_examples(tasks: dict[str, TaskSpec]) -> Model:
    """A model trained on the taxonomy's example prompts (cached per process by their content)."""
    from .model import train

    rows = [(example, task) for task, spec in tasks.items() for example in spec.examples]
    if len({task for _, task in rows}) < 2:
        raise ValueError("artifact: examples needs example prompts for at least two tasks of the taxonomy")
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    key = ("examples:" + digest, 0.0)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = train([p for p, _ in rows], [t for _, t in rows], max_iter=200)
            _cache[key] = model
        return model


class LearnedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: str = Field(
        default="builtin", description="'builtin', 'examples' (train on the taxonomy's examples) or an artifact path"
    )
    label_map: dict[str, str] = Field(
        default_factory=lambda: {"general_qa": "open_qa"},
        description="model label -> taxonomy task; probabilities of labels mapped together are summed",
    )
    history_turns: Annotated[int, Field(ge=1)] = 4
    """How many user turns (latest first) a multi-turn request contributes."""
    few_shot_below: Annotated[int, Field(ge=0)] = 50
    """With ``artifact: examples``: when a task has fewer examples than this, the ``fewshot`` model decides
    instead of a trained one (it is the better of the two on a few examples per label; 0 = always train)."""


class LearnedClassifier(Classifier):
    """Offline prompt classifier: hashed word/char n-grams + structural features, logistic regression."""

    name: ClassVar[str] = "learned"
    Config: ClassVar[type[BaseModel]] = LearnedConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        import numpy as np

        super().__init__(config, context)
        assert isinstance(config, LearnedConfig)
        self.few_shot: FewShotClassifier | None = None
        counts = [len(spec.examples) for spec in context.taxonomy.tasks.values()]
        few = min(counts) < config.few_shot_below and sum(c > 0 for c in counts) >= 2
        if config.artifact == "examples" and few:
            from .fewshot import FewShotClassifier, FewShotConfig

            self.few_shot = FewShotClassifier(FewShotConfig(), context)
            return
        if config.artifact == "examples":
            self.model = train_on_examples(dict(context.taxonomy.tasks))
        else:
            self.model = load_artifact(resolve_artifact(config.artifact, context.policy_dir))
        tasks = context.taxonomy.tasks
        targets = [config.label_map.get(label, label) for label in self.model.labels]
        # columns of the model's probabilities that feed each taxonomy task
        self._columns: list[tuple[str, np.ndarray]] = []
        for task in dict.fromkeys(targets):
            if task in tasks:
                cols = np.array([i for i, t in enumerate(targets) if t == task], dtype=np.int64)
                self._columns.append((task, cols))
        if not self._columns:
            raise ValueError(
                f"none of the artifact's labels {self.model.labels} (after label_map) is a task of the taxonomy; "
                "train an artifact on your labels (llm-router train classifier) or set label_map"
            )
        self.unmapped = [label for label, t in zip(self.model.labels, targets, strict=True) if t not in tasks]
        self._history = config.history_turns

    def probabilities(self, request: RouteRequest) -> np.ndarray | None:
        """The model's calibrated probabilities over its own labels, or ``None`` without user text."""
        turns = [m.text() for m in request.messages if m.role == "user"]
        turns = [t for t in turns if t.strip()][-self._history :]
        if not turns:
            return None
        if len(turns) == 1:
            probs: np.ndarray = self.model.predict_proba(turns[0])[1][0]
        else:
            probs = self.model.classify_conversation(turns)[1][0]
        return probs

    def classify(self, request: RouteRequest) -> Prediction | None:
        if self.few_shot is not None:
            return self.few_shot.classify(request)
        probs = self.probabilities(request)
        if probs is None:
            return None
        scores = {task: float(probs[cols].sum()) for task, cols in self._columns}
        best = max(scores, key=scores.__getitem__)
        return Prediction(task=best, confidence=scores[best], scores=scores)
