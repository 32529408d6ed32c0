"""The artifact: the shipped one loads; a trained one round-trips; bad ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from llm_router_classify import BUILTIN_ARTIFACT, ArtifactError, Model, train

DATA = Path(__file__).parent / "data"


def rows(name: str) -> list[tuple[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [(o["prompt"], o["label"]) for o in map(json.loads, lines)]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path]:
    pytest.importorskip("sklearn")
    data = rows("support-train.jsonl")
    model = train([p for p, _ in data], [lab for _, lab in data], n_bits=14, max_iter=100)
    path = tmp_path_factory.mktemp("art") / "support"
    model.save(path)
    return model, path


def test_builtin_artifact_loads_and_is_documented() -> None:
    model = Model.load(BUILTIN_ARTIFACT)
    assert {"open_qa", "general_qa", "code", "math", "summarization"} <= set(model.labels)
    assert model.temperature == pytest.approx(1.231, abs=1e-3)
    assert (BUILTIN_ARTIFACT.parent / "PROVENANCE.md").read_text().count("CC BY-SA 3.0") >= 1
    labels, p = model.predict_proba("Write a haiku about autumn leaves.")
    assert labels[int(p[0].argmax())] == "creative_writing"
    assert p.sum() == pytest.approx(1.0, abs=1e-5)


def test_round_trip_gives_the_same_probabilities(small_model: tuple[Model, Path]) -> None:
    model, path = small_model
    loaded = Model.load(path)
    assert loaded.labels == model.labels == ["billing", "bug_report", "feature_request"]
    text = "I was charged twice, please refund me."
    np.testing.assert_allclose(loaded.predict_proba(text)[1], model.predict_proba(text)[1], atol=2e-3)
    header = json.loads(path.with_suffix(".json").read_text())
    assert header["format"] == "llm-router-prompt-classifier"
    assert header["format_version"] == 1


def test_the_builtin_artifact_round_trips_without_scikit_learn(tmp_path: Path) -> None:
    model = Model.load(BUILTIN_ARTIFACT)
    model.save(tmp_path / "copy")
    again = Model.load(tmp_path / "copy")
    assert again.labels == model.labels
    assert again.temperature == model.temperature
    text = "Summarize the key points of the passage.\n\nThe passage is about rivers and their deltas."
    np.testing.assert_allclose(again.predict_proba(text)[1], model.predict_proba(text)[1], atol=1e-6)


def _copy(src: Path, dst: Path) -> Path:
    dst.with_suffix(".json").write_text(src.with_suffix(".json").read_text())
    dst.with_suffix(".npz").write_bytes(src.with_suffix(".npz").read_bytes())
    return dst


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.update(format="something-else"), "not an"),
        (lambda h: h.update(format_version=99), "unsupported format_version"),
        (lambda h: h.update(labels=["only-one"]), "labels"),
        (lambda h: h.update(labels=["a", "b", "c", "d"]), "do not match"),
        (lambda h: h.update(n_features=12), "feature layout"),
        (lambda h: h["hyper"].pop("n_bits"), "hyper"),
        (lambda h: h.update(temperature=0), "temperature"),
    ],
)
def test_a_bad_header_is_refused(tmp_path: Path, change, message: str) -> None:
    path = _copy(BUILTIN_ARTIFACT, tmp_path / "bad")
    header = json.loads(path.with_suffix(".json").read_text())
    change(header)
    path.with_suffix(".json").write_text(json.dumps(header))
    with pytest.raises(ArtifactError, match=message):
        Model.load(path)


def test_pickled_arrays_and_garbage_are_refused(tmp_path: Path) -> None:
    path = _copy(BUILTIN_ARTIFACT, tmp_path / "pickled")
    with np.load(path.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["bias"] = np.array([object(), 1, 2], dtype=object)  # needs pickle to load
    np.savez(path.with_suffix(".npz"), **arrays)
    with pytest.raises(ArtifactError, match="cannot read the arrays"):
        Model.load(path)
    path.with_suffix(".npz").write_bytes(b"not a zip file")
    with pytest.raises(ArtifactError):
        Model.load(path)
    with pytest.raises(ArtifactError, match="cannot read the header"):
        Model.load(tmp_path / "missing")


def test_long_prompts_are_truncated_and_fast() -> None:
    model = Model.load(BUILTIN_ARTIFACT)
    huge = "Summarize this article.\n\n" + "word " * 40_000
    _, p = model.predict_proba(huge)
    assert model.labels[int(p[0].argmax())] in {"summarization", "closed_qa", "information_extraction"}
