"""The ``fewshot`` stage, the ``static`` embedder and the embedder registry, the ``classify`` command, and the
few-shot path of ``eval classify --train`` (baseline and majority rate printed beside the product)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from llm_router import Router, TaskSpec
from llm_router.cli import build_app
from llm_router.errors import PolicyError
from llm_router_classify.embeddings import StaticEmbeddings, embedder_names, get_embedder, register_embedder
from llm_router_classify.fewshot import (
    FewShotConfig,
    FewShotModel,
    SparseTfidf,
    char_terms,
    fit_kernel_logreg,
    word_terms,
)
from typer.testing import CliRunner

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "support-train.jsonl", DATA / "support-test.jsonl"
runner = CliRunner()


def rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def support_tasks(with_examples: bool = True) -> dict[str, dict[str, object]]:
    descriptions = {
        "billing": "payments, invoices, refunds and charges on the account",
        "bug_report": "something in the app is broken, crashes or shows an error",
        "feature_request": "asks for a new feature or an improvement",
    }
    tasks: dict[str, dict[str, object]] = {k: {"description": v, "examples": []} for k, v in descriptions.items()}
    if with_examples:
        for o in rows(TRAIN):
            tasks[o["label"]]["examples"].append(o["prompt"])  # type: ignore[union-attr]
    return tasks


def fewshot_router(tasks: dict[str, dict[str, object]], **params: object) -> Router:
    return Router({"taxonomy": {"replace": True, "tasks": tasks}, "classify": [{"fewshot": params}]})


# --------------------------------------------------------------------------------------------------
# the static embedder and the registry


def test_the_static_embedder_is_registered_and_puts_paraphrases_closer_than_unrelated_text() -> None:
    assert {"static", "e5"} <= set(embedder_names())
    embed = get_embedder("static", 1)
    assert get_embedder("static", 1) is embed  # one per process
    v = embed(["I want my money back for this order", "please refund my payment", "the weather is sunny today"])
    assert v.shape == (3, 256)
    assert v.dtype == np.float32
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert u[0] @ u[1] > u[0] @ u[2] + 0.1
    assert not embed(["%%% 123 ???"]).any()  # no known word: zeros, not an error


def test_the_static_artifact_is_checked_and_documented(tmp_path: Path) -> None:
    from llm_router_classify.embeddings import STATIC_ARTIFACT

    provenance = (STATIC_ARTIFACT.parent / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "multilingual-e5-small" in provenance
    assert "wordfreq" in provenance
    header = json.loads(STATIC_ARTIFACT.with_suffix(".json").read_text(encoding="utf-8"))
    header["words"] = header["words"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(header))
    (tmp_path / "bad.npz").write_bytes(STATIC_ARTIFACT.with_suffix(".npz").read_bytes())
    with pytest.raises(ValueError, match="do not match"):
        StaticEmbeddings(tmp_path / "bad")


def test_a_registered_back_end_is_used_by_name() -> None:
    calls: list[int] = []

    def letters(threads: int):
        calls.append(threads)

        def embed(texts):
            out = np.zeros((len(texts), 26), dtype=np.float32)
            for i, t in enumerate(texts):
                for ch in t.lower():
                    if "a" <= ch <= "z":
                        out[i, ord(ch) - 97] += 1
            return out

        return embed

    register_embedder("letters-for-test", letters)
    assert "letters-for-test" in embedder_names()
    r = fewshot_router(support_tasks(), backend="letters-for-test", threads=2)
    assert calls == [2]
    assert r.route("I was charged twice, refund one payment").classification.task in support_tasks()
    with pytest.raises(PolicyError, match="unknown embedding backend 'nope'"):
        fewshot_router(support_tasks(), backend="nope")


# --------------------------------------------------------------------------------------------------
# the model


def test_tfidf_similarities_match_the_dense_computation() -> None:
    docs = ["the app crashes on start", "refund my payment please", "please add a dark mode to the app"]
    for terms in (word_terms, char_terms):
        index = SparseTfidf(docs, terms)
        gram = index.gram()
        np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-5)
        for i, d in enumerate(docs):
            np.testing.assert_allclose(index.similarities(d), gram[i], atol=1e-5)
        assert not index.similarities("zzzz qqqq").any()
    assert char_terms("ab") == [" a", "ab", "b ", " ab", "ab ", " ab "]
    assert word_terms("Crash on start") == ["crash", "on", "start", "crash on", "on start"]


def test_kernel_logistic_regression_fits_separable_points() -> None:
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float64)
    coef = fit_kernel_logreg(x @ x.T, np.array([0, 0, 1, 1]), 2, c=10.0, iterations=300)
    z = x @ x.T @ coef[:-1] + coef[-1]
    assert list(z.argmax(axis=1)) == [0, 0, 1, 1]


def test_the_stage_learns_a_custom_taxonomy_from_a_few_examples() -> None:
    r = fewshot_router(support_tasks(), threshold=0.4)
    test = rows(TEST)
    right = sum(r.route(o["prompt"]).classification.task == o["label"] for o in test)
    assert right >= 8
    c = r.route("I was charged twice this month, please refund me.").classification
    assert c.task == "billing"
    assert c.method == "fewshot"
    assert set(c.scores) == {"billing", "bug_report", "feature_request"}
    assert sum(c.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert c.confidence == max(c.scores.values())


def test_a_policy_with_its_own_labels_and_no_classify_list_uses_fewshot_by_default() -> None:
    r = Router({"taxonomy": {"replace": True, "tasks": support_tasks()}})
    assert any("'fewshot'" in w and "classify: not set" in w for w in r.warnings), r.warnings
    test = rows(TEST)
    decided = [r.route(o["prompt"]).classification for o in test]
    assert sum(c.task == o["label"] for c, o in zip(decided, test, strict=True)) >= 8
    methods = {c.method for c in decided}
    assert methods <= {"rules", "fewshot"}
    assert "fewshot" in methods
    # an explicit classify list is kept as written; a policy without labels of its own keeps the default
    assert not any("classify: not set" in w for w in fewshot_router(support_tasks()).warnings)
    plain = Router({"providers": {}})
    assert plain.route("hello there").classification.method == "rules"
    assert not any("classify: not set" in w for w in plain.warnings)


def test_zero_shot_from_names_and_descriptions_only() -> None:
    r = fewshot_router(support_tasks(with_examples=False))
    assert r.route("My invoice shows a charge I did not make").classification.task == "billing"
    assert r.route("The app crashes with an error when I open it").classification.task == "bug_report"
    assert r.route("Could you add a new feature to export reports?").classification.task == "feature_request"


def test_nearest_support_texts_explain_the_decision() -> None:
    tasks = {name: TaskSpec(**spec) for name, spec in support_tasks().items()}  # type: ignore[arg-type]
    model = FewShotModel(tasks, get_embedder("static", 1), FewShotConfig())
    example = rows(TRAIN)[0]
    scores, near = model.predict(example["prompt"], neighbours=3)
    assert max(scores, key=scores.__getitem__) == example["label"]
    assert len(near) == 3
    assert near[0].text == example["prompt"]
    assert near[0].example
    assert near[0].label == example["label"]
    assert near[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert near[0].similarity >= near[1].similarity >= near[2].similarity


def test_a_taxonomy_of_one_task_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="at least two tasks"):
        fewshot_router({"only": {"description": "x"}})


def test_learned_from_examples_uses_the_fewshot_model_below_fifty_examples() -> None:
    tasks = support_tasks()
    r = Router({"taxonomy": {"replace": True, "tasks": tasks}, "classify": [{"learned": {"artifact": "examples"}}]})
    classifier = r.stages[0].classifier
    assert classifier.few_shot is not None  # type: ignore[attr-defined]
    assert r.route("The export button crashes the app").classification.task == "bug_report"


# --------------------------------------------------------------------------------------------------
# commands


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


def test_eval_classify_train_uses_fewshot_and_prints_baseline_and_majority(app: typer.Typer) -> None:
    pytest.importorskip("sklearn")
    result = runner.invoke(app, ["eval", "classify", "--train", str(TRAIN), "--data", str(TEST), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["trained"] == "fewshot"
    assert out["decided_by"] == {"fewshot": 1.0}
    assert out["majority"] == {"label": "billing", "rate": pytest.approx(3 / 9)}
    assert 0 <= out["baseline_tfidf_lr"] <= 1
    text = runner.invoke(app, ["eval", "classify", "--train", str(TRAIN), "--data", str(TEST)])
    assert "majority class (billing) 33.33 %" in text.stdout
    assert "TF-IDF + LR on the same training rows" in text.stdout


def test_classify_command_prints_label_confidence_and_nearest_examples(app: typer.Typer, tmp_path: Path) -> None:
    import yaml

    policy = tmp_path / "policy.yaml"
    spec = {"taxonomy": {"replace": True, "tasks": support_tasks()}, "classify": [{"fewshot": {}}]}
    policy.write_text(yaml.safe_dump(spec))
    prompt = "I was charged twice for my plan, can I get my money back?"
    result = runner.invoke(app, ["classify", prompt, "--policy", str(policy), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["task"] == "billing"
    assert out["method"] == "fewshot"
    assert 0 < out["confidence"] <= 1
    assert len(out["nearest"]) == 3
    assert out["nearest"][0]["label"] == "billing"
    assert out["nearest_from"] == "stage fewshot"
    text = runner.invoke(app, ["classify", prompt, "--policy", str(policy), "-n", "2"])
    assert text.exit_code == 0
    assert "task billing" in text.stdout
    assert "nearest examples" in text.stdout
    plain = runner.invoke(app, ["classify", "Write a haiku about autumn", "--json"])
    assert plain.exit_code == 0, plain.output
    default = json.loads(plain.stdout.strip().splitlines()[-1])
    assert default["task"] == "creative_writing"
    assert default["nearest_from"] == "a fewshot model over the taxonomy"
    assert default["nearest"][0]["label"] == "creative_writing"
    missing = runner.invoke(app, ["classify", "x", "--policy", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2


def test_the_documented_example_policy_runs_zero_shot_labels_beside_few_shot_ones(app: typer.Typer) -> None:
    policy = Path(__file__).parents[3] / "examples" / "policies" / "custom_labels.yaml"
    r = Router.from_policy(policy)
    assert [s.name for s in r.stages] == ["fewshot"]
    expected = {
        "I was billed twice for my plan this month": "billing",
        "Can you add SSO with Okta?": "feature_request",
        "The page freezes when I upload a picture": "bug_report",
        "Is there a data processing agreement for GDPR?": "legal",  # no example: from its description
    }
    for prompt, task in expected.items():
        assert r.route(prompt).classification.task == task, prompt
    result = runner.invoke(app, ["classify", "I was billed twice for my plan this month", "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    assert "task billing" in result.stdout
    assert "I was charged twice for my subscription this month." in result.stdout


def test_the_benchmark_script_runs_and_reports_baseline_majority_and_zero_shot(tmp_path: Path) -> None:
    import subprocess
    import sys

    pytest.importorskip("sklearn")
    (tmp_path / "support-test.jsonl").write_text(TRAIN.read_text() + TEST.read_text())
    script = Path(__file__).parents[3] / "benchmarks" / "bench_fewshot.py"
    args = ["--sets", str(tmp_path), "--part", "test", "--seeds", "2", "--shots", "3", "--json"]
    command = [sys.executable, str(script), *args]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    row = report["sets"]["support"]
    assert row["labels"] == 3
    assert row["majority"] == pytest.approx(1 / 3)
    assert {"baseline", "fewshot", "zero_shot", "p50_ms", "p99_ms"} <= set(row)
    assert row["p99_ms"] >= row["p50_ms"] > 0
    assert "fewshot above the baseline on" in done.stdout
