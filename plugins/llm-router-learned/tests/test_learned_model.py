from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from llm_router_learned.data import load_rows, split
from llm_router_learned.model import FORMAT, ArtifactError, QualityModel, train


def test_round_trip_stack(artifact: Path, data_dir: Path) -> None:
    rows = load_rows([data_dir / "synth-test.jsonl"])
    prompts = [r["prompt"] for r in rows]
    loaded = QualityModel.load(artifact)
    assert loaded.models == ["big", "small", "mid"]
    p = loaded.predict_matrix(prompts)
    assert p.shape == (60, 3)
    assert np.all((p >= 0) & (p <= 1))
    assert np.allclose(QualityModel.load(artifact).predict_matrix(prompts), p)
    # it learned the tasks: small is predicted worse on math than on chat
    task = np.array([r["task"] for r in rows])
    assert p[task == "math", 1].mean() < p[task == "chat", 1].mean() - 0.3
    assert p[task == "math", 0].mean() > p[task == "math", 1].mean() + 0.3


def test_round_trip_knn(tmp_path: Path, data_dir: Path) -> None:
    rows = load_rows([data_dir / "synth-train.jsonl"])
    qm = train(rows, method="knn_tfidf")
    path = tmp_path / "knn.npz"
    qm.save(path)
    assert path.exists()
    prompts = ["solve the integral equation", "hello friend coffee"]
    assert np.allclose(QualityModel.load(path).predict_matrix(prompts), qm.predict_matrix(prompts))


def test_missing_scores_are_masked(tmp_path: Path, data_dir: Path) -> None:
    rows = load_rows([data_dir / "synth-train.jsonl"])
    for r in rows[::2]:
        del r["scores"]["mid"]
    qm = train(rows, method="stack", folds=2)
    assert qm.models == ["big", "small", "mid"]
    assert np.all(np.isfinite(qm.predict_matrix(["python loop bug"])))


def test_parallel_fits_give_the_same_artifact(data_dir: Path) -> None:
    """The stack's fold and final fits run in worker processes (n_jobs); the artifact must not depend on it."""
    rows = load_rows([data_dir / "synth-train.jsonl"])
    serial = train(rows, method="stack", folds=3, n_jobs=1)
    parallel = train(rows, method="stack", folds=3, n_jobs=2)
    assert serial.arrays.keys() == parallel.arrays.keys()
    for key, value in serial.arrays.items():
        assert np.array_equal(value, parallel.arrays[key]), key
    assert serial.header["mean_prediction"] == parallel.header["mean_prediction"]
    assert serial.header["hyper"] == parallel.header["hyper"]  # n_jobs is not a hyper-parameter


def _save_raw(path: Path, header: object, **arrays: np.ndarray) -> None:
    hdr = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as fh:
        np.savez(fh, __header__=hdr, **arrays)


def test_refuses_bad_artifacts(tmp_path: Path, artifact: Path) -> None:
    bad = tmp_path / "text.npz"
    bad.write_text("not a zip")
    with pytest.raises(ArtifactError, match=r"text\.npz"):
        QualityModel.load(bad)
    with pytest.raises(ArtifactError, match="no such artifact"):
        QualityModel.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    _save_raw(other, {"format": "something-else", "version": 1})
    with pytest.raises(ArtifactError, match=r"other\.npz: unknown artifact format"):
        QualityModel.load(other)
    newer = tmp_path / "newer.npz"
    _save_raw(newer, {"format": FORMAT, "version": 99, "method": "stack"})
    with pytest.raises(ArtifactError, match=r"newer\.npz: artifact version 99 is not supported"):
        QualityModel.load(newer)
    nohdr = tmp_path / "nohdr.npz"
    with nohdr.open("wb") as fh:
        np.savez(fh, x=np.zeros(2))
    with pytest.raises(ArtifactError, match="no __header__"):
        QualityModel.load(nohdr)
    # object arrays (pickles) are never loaded
    pickled = tmp_path / "pickled.npz"
    with pickled.open("wb") as fh:
        np.savez(fh, __header__=np.array([{"format": FORMAT}], dtype=object))
    with pytest.raises(ArtifactError, match=r"pickled\.npz"):
        QualityModel.load(pickled)
    incomplete = tmp_path / "incomplete.npz"
    _save_raw(incomplete, {"format": FORMAT, "version": 1, "method": "stack"}, vocab=np.array(["a"]))
    with pytest.raises(ArtifactError, match="missing arrays"):
        QualityModel.load(incomplete)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        train([{"prompt": "x", "scores": {"a": 1.0}}], method="nope")


def test_split_is_stratified_and_disjoint(data_dir: Path) -> None:
    rows = load_rows([data_dir / "synth-train.jsonl"])
    tr, te = split(rows, 0.2)
    assert len(te) == 30
    assert len(tr) == 120
    assert {r["id"] for r in tr}.isdisjoint({r["id"] for r in te})
    assert {r["task"] for r in te} == {"math", "chat", "code"}
