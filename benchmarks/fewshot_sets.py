r"""Build the few-shot label sets of docs/classification.md#your-own-labels from public data (not shipped).

Each set is written as ``<name>-dev.jsonl`` (tune here) and ``<name>-test.jsonl`` (report here): JSON Lines of
``{"prompt", "label"}``, split 50/50 per label with seed 0, at most ``--cap`` rows per label in each half.

Sources (clone or copy them, then pass their paths):

* banking20: 20 of BANKING77's 77 intents (seed 0); PolyAI-LDN/task-specific-datasets
  banking_data/{train,test}.csv; CC BY 4.0.
* clinc_domains: CLINC150's 10 domains (in-scope queries); clinc/oos-eval data/data_full.json + domains.json;
  CC BY 3.0.
* clinc30: 30 of CLINC150's 150 intents (seed 0); same source and licence.
* hwu_scenarios: HWU64's 18 scenarios; xliuhw/NLU-Evaluation-Data, the annotated JSON files of
  CrossValidation/.../KFold_*/testset/ copied into one folder (--hwu); CC BY 4.0.
* hwu25: 25 of HWU64's 64 intents (seed 0); same source and licence.
* dolly8: Dolly's 8 task types (task-type labels, not topical); shared/data/classify/dolly-dev.jsonl;
  CC BY-SA 3.0.
* llmrouter14: the 14 benchmark names of the `task` field; shared/data/routing/llmrouter-train.jsonl; MIT.
* mmlu20: 20 of MMLU's 57 subjects (seed 0); shared/data/routing/mmlu-pair-train.jsonl; Apache-2.0
  (RouteLLM), MMLU itself MIT.

    # HWU64: gather the annotated test files of the 10 folds (together: the whole annotated set) in one folder
    mkdir hwu && for f in NLU-Evaluation-Data/CrossValidation/*/*/CrossValidation/KFold_*/testset/annotated/*/*.json
    do k=$(echo "$f" | sed 's#.*KFold_\([0-9]*\)/.*#\1#'); cp "$f" "hwu/k${k}_$(basename "$f")"; done
    python benchmarks/fewshot_sets.py --banking task-specific-datasets/banking_data --clinc oos-eval/data \
        --hwu hwu --shared ../shared/data --out /tmp/fewshot-sets
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import defaultdict
from pathlib import Path

Rows = list[tuple[str, str]]


def _subsample(rows: Rows, n_labels: int, seed: int = 0) -> Rows:
    labels = sorted({label for _, label in rows})
    keep = set(random.Random(seed).sample(labels, n_labels))
    return [(p, label) for p, label in rows if label in keep]


def banking(path: Path) -> Rows:
    rows: Rows = []
    for name in ("train.csv", "test.csv"):
        with (path / name).open(encoding="utf-8") as f:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(f)]
    return rows


def clinc(path: Path) -> tuple[Rows, Rows]:
    data = json.loads((path / "data_full.json").read_text(encoding="utf-8"))
    domains = json.loads((path / "domains.json").read_text(encoding="utf-8"))
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    intents = [(p, label) for part in ("train", "val", "test") for p, label in data[part]]
    return intents, [(p, domain_of[label]) for p, label in intents]


def hwu(path: Path) -> Rows:
    rows: Rows = []
    for file in sorted(path.glob("*.json")):
        for item in json.loads(file.read_text(encoding="utf-8"))["test_data_annotation"]:
            rows.append((item["text"], item["intent"]))
    return sorted(set(rows))


def shared(path: Path) -> dict[str, Rows]:
    def read(name: str, field: str) -> Rows:
        lines = [ln for ln in (path / name).read_text(encoding="utf-8").split("\n") if ln.strip()]
        return [(o["prompt"], o[field]) for o in map(json.loads, lines)]

    mmlu = [(p, label.removeprefix("mmlu/")) for p, label in read("routing/mmlu-pair-train.jsonl", "task")]
    return {
        "dolly8": read("classify/dolly-dev.jsonl", "label"),
        "llmrouter14": read("routing/llmrouter-train.jsonl", "task"),
        "mmlu20": _subsample(mmlu, 20),
    }


def split(rows: Rows, cap: int, seed: int = 0) -> tuple[Rows, Rows]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for p, label in rows:
        by_label[label].append(p)
    dev: Rows = []
    test: Rows = []
    rng = random.Random(seed)
    for label in sorted(by_label):
        prompts = sorted(set(by_label[label]))
        rng.shuffle(prompts)
        half = len(prompts) // 2
        dev += [(p, label) for p in prompts[:half][:cap]]
        test += [(p, label) for p in prompts[half:][:cap]]
    return dev, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banking", type=Path, required=True)
    parser.add_argument("--clinc", type=Path, required=True)
    parser.add_argument("--hwu", type=Path, required=True)
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cap", type=int, default=60)
    args = parser.parse_args()
    clinc_intents, clinc_domains = clinc(args.clinc)
    hwu_intents = hwu(args.hwu)
    sets = {
        "banking20": _subsample(banking(args.banking), 20),
        "clinc_domains": clinc_domains,
        "clinc30": _subsample(clinc_intents, 30),
        "hwu_scenarios": [(p, label.split("_")[0]) for p, label in hwu_intents],
        "hwu25": _subsample(hwu_intents, 25),
        **shared(args.shared),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in sets.items():
        for part, part_rows in zip(("dev", "test"), split(rows, args.cap), strict=True):
            with (args.out / f"{name}-{part}.jsonl").open("w", encoding="utf-8") as f:
                for p, label in part_rows:
                    f.write(json.dumps({"prompt": p, "label": label}) + "\n")
        print(f"{name}: {len({lab for _, lab in rows})} labels, {len(rows)} rows")


if __name__ == "__main__":
    main()
