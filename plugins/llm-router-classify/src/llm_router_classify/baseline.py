"""The TF-IDF + logistic-regression baseline that ``eval classify --train`` prints beside the product.

Word 1–2-grams and character 2–5-grams inside words (``char_wb``), sublinear tf, then a logistic regression with
C=10 (scikit-learn: the ``[train]`` extra). This is the plain bag-of-words model a team would try first on a few
examples per label; the ``fewshot`` stage must beat it on the same split (docs/classification.md).
"""

from __future__ import annotations

from collections.abc import Sequence


def baseline_predict(train: Sequence[tuple[str, str]], prompts: Sequence[str]) -> list[str]:
    """Fit on ``train`` (prompt, label) rows and predict a label for each prompt."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=10, max_iter=1000))
    model.fit([p for p, _ in train], [label for _, label in train])
    return [str(x) for x in model.predict(list(prompts))]


def baseline_accuracy(train: Sequence[tuple[str, str]], test: Sequence[tuple[str, str]]) -> float:
    """Accuracy of :func:`baseline_predict` on ``test`` (prompt, label) rows."""
    pred = baseline_predict(train, [p for p, _ in test])
    return sum(p == label for p, (_, label) in zip(pred, test, strict=True)) / max(len(test), 1)
