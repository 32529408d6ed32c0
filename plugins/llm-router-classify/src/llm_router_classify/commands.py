"""``llm-router train classifier``, ``llm-router eval classify`` and ``llm-router calibrate classifier`` (and
``llm-router classify``, in :mod:`llm_router_classify.explain`).

Data files are JSON Lines, one ``{"prompt": str, "label": str}`` object a line (other fields are ignored).

This module is imported by the ``register_commands`` hook, i.e. by every ``llm-router`` command, ``route``
included: numpy, the model and rich's progress bars are imported inside the commands that use them.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
import yaml
from llm_router import DEFAULT_TASKS
from llm_router.errors import NoCandidatesError, PluginError, PolicyError
from llm_router.types import Classification, RouteRequest
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import numpy as np
    from llm_router.commands import CommandGroups

    from .model import Model

EXIT_BAD_INPUT = 2
out = Console(width=160, highlight=False)
err = Console(stderr=True, highlight=False)

DataOpt = Annotated[list[Path], typer.Option("--data", help="JSONL file of {prompt, label} (repeatable)")]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map", help="rename a label before scoring, e.g. --map general_qa=open_qa (repeatable)", metavar="FROM=TO"
    ),
]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", "-p", help="routing policy YAML whose cascade is used")]
TrainOpt = Annotated[
    list[Path] | None,
    typer.Option("--train", help="train a learned classifier on this JSONL first and use it (repeatable)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline", help="leave out async stages (the llm stage): what they would get shows as '(below threshold)'"
    ),
]


# --------------------------------------------------------------------------------------------------
# data


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_BAD_INPUT)


def read_rows(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """(prompt, label) pairs from JSONL files; raise a CLI error naming file:line on a bad row."""
    rows: list[tuple[str, str]] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _fail(f"{path}: {exc.strerror or exc}") from exc
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                prompt, label = obj["prompt"], obj["label"]
            except (ValueError, KeyError, TypeError) as exc:
                raise _fail(f"{path}:{n}: expected a JSON object with 'prompt' and 'label'") from exc
            if not isinstance(prompt, str) or not isinstance(label, str):
                raise _fail(f"{path}:{n}: 'prompt' and 'label' must be strings")
            rows.append((prompt, label))
    if not rows:
        raise _fail("no data rows")
    return rows


def parse_map(items: Sequence[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items or ():
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise _fail(f"--map expects FROM=TO, got {item!r}")
        mapping[src.strip()] = dst.strip()
    return mapping


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# training


def train_model(rows: Sequence[tuple[str, str]], *, quiet: bool = False, **hyper: Any) -> Model:
    """Train with a rich progress bar (two passes over the data, then the solver)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .model import train

    texts = [p for p, _ in rows]
    labels = [label for _, label in rows]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("featurising (idf, then features)", total=2 * len(texts))

        def advance(n: int) -> None:
            progress.advance(task, n)
            if progress.tasks[task].completed >= 2 * len(texts):
                progress.update(task, description="fitting logistic regression")

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = train(texts, labels, progress=advance, **hyper)
        except ImportError as exc:
            raise _fail(str(exc)) from exc
        except ValueError as exc:
            raise _fail(f"training failed: {exc}") from exc
    if any("converge" in str(w.message).lower() for w in caught) and not quiet:
        err.print(
            f"note: the solver stopped at max_iter={hyper.get('max_iter', 300)} before full convergence "
            "(the usual case here; raise --max-iter to go further)"
        )
    return model


def calibrate_temperature(model: Model, rows: Sequence[tuple[str, str]]) -> float | None:
    import numpy as np

    from .model import fit_temperature

    known = [(p, lab) for p, lab in rows if lab in model.labels]
    if len(known) < 10:
        return None
    z = np.stack([model.logits_one(p) for p, _ in known])
    y = np.array([model.labels.index(lab) for _, lab in known])
    return fit_temperature(z, y)


def train_classifier(
    data: DataOpt,
    out_path: Annotated[Path, typer.Option("--out", help="artifact path: writes OUT.json and OUT.npz")],
    dev: Annotated[Path | None, typer.Option("--dev", help="JSONL to fit the confidence temperature on")] = None,
    label_map: MapOpt = None,
    c: Annotated[float, typer.Option("--C", help="inverse L2 strength of the logistic regression")] = 10.0,
    max_iter: Annotated[int, typer.Option("--max-iter")] = 300,
    as_json: JsonOpt = False,
) -> None:
    """Train the learned classifier on labelled prompts; write a versioned, pickle-free artifact."""
    mapping = parse_map(label_map)
    rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows(data)]
    t0 = time.perf_counter()
    model = train_model(rows, quiet=as_json, C=c, max_iter=max_iter)
    seconds = time.perf_counter() - t0
    if dev is not None:
        dev_rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows([dev])]
        temperature = calibrate_temperature(model, dev_rows)
        if temperature is not None:
            model.temperature = temperature
    model.meta.update(
        {
            "n_train": len(rows),
            "label_counts": dict(sorted(Counter(lab for _, lab in rows).items())),
            "data": [{"file": p.name, "sha256_16": _sha256(p)} for p in data],
            "temperature_from": dev.name if dev is not None else None,
            "train_s": round(seconds, 1),
        }
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_path.with_suffix("") if out_path.suffix in (".json", ".npz") else out_path)
    summary = {
        "version": 1,
        "artifact": str(out_path.with_suffix("")),
        "labels": model.labels,
        "n_train": len(rows),
        "temperature": round(model.temperature, 4),
        "train_s": round(seconds, 1),
    }
    if as_json:
        print(json.dumps(summary))
    else:
        out.print(
            f"wrote {summary['artifact']}.json/.npz: {len(model.labels)} labels, {len(rows)} prompts, "
            f"T={model.temperature:.3f}, {seconds:.1f} s"
        )


# --------------------------------------------------------------------------------------------------
# a router for evaluation


FEW_SHOT_BELOW = 50
"""``eval classify --train`` uses the ``fewshot`` stage when a label has fewer training rows than this."""


def uses_few_shot(train_rows: Sequence[tuple[str, str]]) -> bool:
    """Whether some label of ``train_rows`` has fewer than :data:`FEW_SHOT_BELOW` rows."""
    return min(Counter(label for _, label in train_rows).values()) < FEW_SHOT_BELOW


def few_shot_policy(policy: dict[str, Any], train_rows: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``policy`` with the training rows as its taxonomy's examples (the taxonomy is replaced by the training
    labels, keeping a label's description and keywords where the policy gives them) and every ``learned``
    stage turned into a ``fewshot`` stage with the same threshold."""
    taxonomy = dict(policy.get("taxonomy") or {})
    given = dict(taxonomy.get("tasks") or {})
    tasks: dict[str, Any] = {}
    for prompt, label in train_rows:
        spec = tasks.setdefault(label, {**dict(given.get(label) or {}), "examples": []})
        spec["examples"].append(prompt)
    policy["taxonomy"] = {**taxonomy, "replace": True, "tasks": tasks}
    stages = []
    for entry in policy.get("classify", []) or []:
        if isinstance(entry, dict) and "learned" in entry:
            threshold = (entry["learned"] or {}).get("threshold")
            stages.append({"fewshot": {} if threshold is None else {"threshold": threshold}})
        else:
            stages.append(entry)
    policy["classify"] = stages
    return policy


@contextmanager
def eval_router(
    policy_path: Path | None,
    gold_labels: set[str],
    train_rows: Sequence[tuple[str, str]] | None,
    label_map: dict[str, str],
    quiet: bool,
    offline: bool = False,
    with_rules: bool = False,
) -> Iterator[Any]:
    """A real Router whose cascade is the policy's (or a single ``learned`` stage), with every gold label in
    its taxonomy; with ``train_rows``, the ``learned`` stages use a model trained on them."""
    from llm_router import Router

    few_shot = train_rows is not None and uses_few_shot(train_rows)
    with tempfile.TemporaryDirectory(prefix="llm-router-classify-") as tmp:
        artifact: str | None = None
        if train_rows is not None and not few_shot:
            model = train_model(train_rows, quiet=quiet)
            artifact = str(Path(tmp) / "trained")
            model.save(artifact)
        if policy_path is not None:
            try:
                policy = yaml.safe_load(policy_path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise _fail(f"{policy_path}: {exc}") from exc
            base = policy_path.resolve().parent
            for entry in policy.get("classify", []) or []:
                if isinstance(entry, dict) and "learned" in entry:
                    params = dict(entry["learned"] or {})
                    if artifact is not None:
                        params["artifact"] = artifact
                    elif params.get("artifact", "builtin") != "builtin":
                        params["artifact"] = str(base / str(params["artifact"]))
                    entry["learned"] = params
        elif few_shot:
            policy = {"classify": [{"rules": {"threshold": 0.9}}] * with_rules + [{"fewshot": {}}]}
        else:
            stage: dict[str, Any] = {"label_map": label_map}
            if artifact is not None:
                stage["artifact"] = artifact
            policy = {"classify": [{"rules": {"threshold": 0.9}}] * with_rules + [{"learned": stage}]}
            if train_rows is not None and not gold_labels <= set(DEFAULT_TASKS):
                policy["taxonomy"] = {"replace": True}
        if few_shot:
            assert train_rows is not None
            policy = few_shot_policy(policy, train_rows)
        taxonomy = policy.setdefault("taxonomy", {}) or {}
        policy["taxonomy"] = taxonomy
        tasks = taxonomy.setdefault("tasks", {}) or {}
        taxonomy["tasks"] = tasks
        known = set() if taxonomy.get("replace") else set(DEFAULT_TASKS)
        for label in sorted(gold_labels - known - set(tasks)):
            tasks[label] = {"description": label.replace("_", " ")}
        try:
            router = Router(policy)
            if offline and any(s.classifier.is_async for s in router.stages):
                keep = [not s.classifier.is_async for s in router.stages]
                router.close()
                policy["classify"] = [e for e, k in zip(policy["classify"], keep, strict=True) if k]
                router = Router(policy)
        except (PolicyError, PluginError) as exc:
            raise _fail(str(exc)) from exc
        try:
            yield router
        finally:
            router.close()


async def _classify_all(router: Any, prompts: Sequence[str]) -> list[Classification]:
    results: list[Classification] = []
    for prompt in prompts:
        try:
            decision = await router.aroute(prompt)
            results.append(decision.classification)
        except NoCandidatesError as exc:  # pragma: no cover - only with policies that reject every model
            raise _fail(f"routing failed (no candidates) for a prompt: {exc}") from exc
    return results


def _percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.array(values), q)) if values else 0.0


def metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold labels, per-label precision/recall/F1 and the confusion matrix."""
    import numpy as np

    labels = sorted(set(gold) | set(pred))
    index = {label: i for i, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, pred, strict=True):
        cm[index[g], index[p]] += 1
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        i = index[label]
        tp = int(cm[i, i])
        support, predicted = int(cm[i].sum()), int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    gold_labels = sorted(set(gold))
    return {
        "n": len(gold),
        "accuracy": float(np.trace(cm) / max(len(gold), 1)),
        "macro_f1": float(np.mean([per_label[label]["f1"] for label in gold_labels])),
        "per_label": per_label,
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }


def eval_classify(
    data: DataOpt,
    train_files: TrainOpt = None,
    policy: PolicyOpt = None,
    label_map: MapOpt = None,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Score the classification cascade on labelled prompts, through a real Router."""
    import numpy as np

    mapping = parse_map(label_map)
    rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows(data)]
    train_rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows(train_files)] if train_files else None
    gold = [lab for _, lab in rows]
    with eval_router(policy, set(gold), train_rows, mapping, as_json, offline) as router:
        t0 = time.perf_counter()
        classifications = anyio.run(_classify_all, router, [p for p, _ in rows])
        wall = time.perf_counter() - t0
    pred = [c.task for c in classifications]
    result = metrics(gold, pred)
    n = len(rows)
    decided = Counter(c.method for c in classifications)
    stage_ms = [sum(s.time_ms for s in c.stages) for c in classifications]
    result.update(
        {
            "version": 1,
            "decided_by": {k: v / n for k, v in sorted(decided.items())},
            "accuracy_by_stage": {
                m: float(np.mean([c.task == g for c, g in zip(classifications, gold, strict=True) if c.method == m]))
                for m in sorted(decided)
            },
            "latency_ms": {"p50": _percentile(stage_ms, 50), "p99": _percentile(stage_ms, 99)},
            "wall_s": wall,
            **reference_rates(rows, train_rows),
        }
    )
    if as_json:
        print(json.dumps(result))
        return
    _print_eval(result)


def reference_rates(rows: Sequence[tuple[str, str]], train_rows: Sequence[tuple[str, str]] | None) -> dict[str, Any]:
    """What the product is compared with: the majority-class rate of ``rows`` and, with training rows, the
    TF-IDF + LR baseline trained on them (``None`` without scikit-learn) and which stage was trained."""
    counts = Counter(label for _, label in rows)
    majority = max(counts, key=counts.__getitem__)
    out: dict[str, Any] = {"majority": {"label": majority, "rate": counts[majority] / len(rows)}}
    if train_rows is not None:
        from .baseline import baseline_accuracy

        try:
            out["baseline_tfidf_lr"] = baseline_accuracy(train_rows, rows)
        except ImportError:
            out["baseline_tfidf_lr"] = None
        out["trained"] = "fewshot" if uses_few_shot(train_rows) else "learned"
    return out


def _print_eval(result: dict[str, Any]) -> None:
    out.print(
        f"[bold]{result['n']} prompts[/]  accuracy {100 * result['accuracy']:.2f} %  "
        f"macro-F1 {100 * result['macro_f1']:.2f} %  "
        f"classification p50 {result['latency_ms']['p50']:.2f} ms  p99 {result['latency_ms']['p99']:.2f} ms"
    )
    line = f"beside it: majority class ({result['majority']['label']}) {100 * result['majority']['rate']:.2f} %"
    if "trained" in result:
        base = result["baseline_tfidf_lr"]
        line += (
            f"  TF-IDF + LR on the same training rows {100 * base:.2f} %"
            if base is not None
            else "  TF-IDF + LR baseline: needs scikit-learn (pip install 'llm-router-classify[train]')"
        )
        line += f"  (trained stage: {result['trained']})"
    out.print(line)
    stages = Table("decided by", "share %", "accuracy %", title="cascade")
    for method, share in result["decided_by"].items():
        stages.add_row(method, f"{100 * share:.1f}", f"{100 * result['accuracy_by_stage'][method]:.1f}")
    out.print(stages)
    per = Table("label", "precision %", "recall %", "F1 %", "support", title="per label")
    for label, m in result["per_label"].items():
        per.add_row(
            label, f"{100 * m['precision']:.1f}", f"{100 * m['recall']:.1f}", f"{100 * m['f1']:.1f}", str(m["support"])
        )
    out.print(per)
    labels = result["confusion"]["labels"]
    cm = Table("gold \\ predicted", *[label[:8] for label in labels], title="confusion matrix")
    for label, row in zip(labels, result["confusion"]["matrix"], strict=True):
        cm.add_row(label, *[str(v) for v in row])
    out.print(cm)


# --------------------------------------------------------------------------------------------------
# calibration


def choose_threshold_for_accuracy(conf: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest threshold whose accepted rows (confidence ≥ it) are at least ``target`` accurate; 1.0 if none."""
    import numpy as np

    if len(conf) == 0:
        return 1.0
    order = np.argsort(-conf, kind="stable")
    cum = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(cum >= target)
    while len(ok):
        t = float(conf[order[ok[-1]]])
        kept = conf >= t
        if correct[kept].mean() >= target:
            return t
        ok = ok[:-1]
    return 1.0


def _round_threshold(t: float, conf: np.ndarray) -> float:
    """``t`` rounded down to 3 decimals (else 6) without letting in any row whose confidence is below ``t``."""
    below = conf[conf < t]
    lower = float(below.max()) if len(below) else -1.0
    for digits in (3, 6):
        scale = 10**digits
        r = math.floor(t * scale) / scale
        if r > lower:
            return r
    return t


def calibrate_classifier(
    data: DataOpt,
    policy: PolicyOpt = None,
    train_files: TrainOpt = None,
    label_map: MapOpt = None,
    target_accuracy: Annotated[
        float | None, typer.Option("--target-accuracy", help="accuracy each offline stage must reach", min=0, max=1)
    ] = None,
    target_llm_share: Annotated[
        float | None, typer.Option("--target-llm-share", help="share of prompts left to the last stage", min=0, max=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pick the cascade's thresholds on labelled dev prompts; print the policy snippet."""
    import numpy as np

    if target_accuracy is not None and target_llm_share is not None:
        raise _fail("give --target-accuracy or --target-llm-share, not both")
    if target_accuracy is None and target_llm_share is None:
        target_accuracy = 0.9
    mapping = parse_map(label_map)
    rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows(data)]
    train_rows = [(p, mapping.get(lab, lab)) for p, lab in read_rows(train_files)] if train_files else None
    gold = np.array([lab for _, lab in rows])
    with eval_router(policy, set(gold.tolist()), train_rows, mapping, as_json, with_rules=True) as router:
        specs = list(router.policy.classify)
        stages = list(router.stages)
        offline = [i for i, s in enumerate(stages) if not s.classifier.is_async]
        tail_is_llm = bool(stages) and stages[-1].classifier.is_async
        if policy is None:
            tail_is_llm = True  # the snippet appends the llm stage
        requests = [RouteRequest(messages=p) for p, _ in rows]
        preds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i in offline:
            conf = np.zeros(len(rows))
            correct = np.zeros(len(rows), dtype=bool)
            for j, req in enumerate(requests):
                p = stages[i].classifier.classify(req)
                if p is not None and p.task in router.taxonomy.tasks:
                    conf[j], correct[j] = p.confidence, p.task == gold[j]
                else:
                    conf[j] = -1.0
            preds[i] = (conf, correct)
    # the stages to set: every offline stage, except the last one when nothing follows it
    tunable = offline if tail_is_llm else offline[:-1]
    thresholds = {i: stages[i].threshold for i in offline}
    undecided = np.ones(len(rows), dtype=bool)
    report: list[dict[str, Any]] = []
    for k, i in enumerate(tunable):
        conf, correct = preds[i]
        if target_accuracy is not None:
            t = choose_threshold_for_accuracy(conf[undecided], correct[undecided], target_accuracy)
        elif k < len(tunable) - 1:
            t = stages[i].threshold
        else:
            assert target_llm_share is not None
            need = int(undecided.sum()) - int(np.floor(target_llm_share * len(rows)))
            avail = np.sort(conf[undecided & (conf >= 0)])[::-1]
            t = 1.0 if need <= 0 or len(avail) == 0 else float(avail[min(need, len(avail)) - 1])
        t = _round_threshold(t, conf[undecided])
        thresholds[i] = t
        accept = undecided & (conf >= t)
        report.append(
            {
                "stage": stages[i].name,
                "threshold": t,
                "share": float(accept.mean()),
                "accuracy": float(correct[accept].mean()) if accept.any() else None,
            }
        )
        undecided &= ~accept
    remainder = float(undecided.mean())
    lines = ["classify:"]
    for i, spec in enumerate(specs):
        params = {k: v for k, v in dict(spec.params).items() if k != "threshold"}
        if i in thresholds and i in tunable:
            params = {"threshold": thresholds[i], **params}
        elif "threshold" in spec.params:
            params = {"threshold": spec.params["threshold"], **params}
        lines.append(f"  - {spec.name}: {json.dumps(params)}")
    if policy is None:
        lines.append('  - llm: {"model": "openai/gpt-4o-mini"}')
    snippet = "\n".join(lines)
    result = {"version": 1, "n": len(rows), "stages": report, "left_to_last_stage": remainder, "policy": snippet}
    if as_json:
        print(json.dumps(result))
        return
    table = Table("stage", "threshold", "decides %", "accuracy on its decisions %", title=f"{len(rows)} prompts")
    for r in report:
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}"
        table.add_row(r["stage"], f"{r['threshold']:.3f}", f"{100 * r['share']:.1f}", acc)
    out.print(table)
    out.print(f"left to the last stage: {100 * remainder:.1f} %\n")
    out.print(snippet, markup=False)


# --------------------------------------------------------------------------------------------------


def register(cli: CommandGroups) -> None:
    """Add the commands to the command line's ``train``, ``eval`` and ``calibrate`` groups."""
    cli.train.command("classifier")(train_classifier)
    cli.eval.command("classify")(eval_classify)
    cli.calibrate.command("classifier")(calibrate_classifier)
    from .explain import classify_prompt

    cli.command("classify")(classify_prompt)
