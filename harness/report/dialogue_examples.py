"""Table 6-style examples: for a few test contexts, the reference and each model's sampled responses.

    python -m harness.report.dialogue_examples --samples results/<exp>/<ds>/<model>/seed1/samples.jsonl ... \
        --out results/<experiment>/tables/table6.txt [--contexts 5] [--responses 3]

Contexts are chosen deterministically (the first test examples with at least two context utterances that every
model was evaluated on), so the examples are not cherry-picked.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.core.io import read_jsonl
from harness.core.io import write_text_atomic


def read_samples(path: Path) -> tuple[str, str, dict[int, dict]]:
    """(dataset, model, {example index: record}) from a samples.jsonl in a results/<exp>/<ds>/<model>/seed<k>/ folder."""
    records = {record["example"]: record for record in read_jsonl(path)}
    return path.parents[2].name, path.parents[1].name, records


def render_examples(samples: list[tuple[str, str, dict[int, dict]]], contexts: int = 5, responses: int = 3) -> str:
    lines = []
    for dataset in sorted({d for d, _, _ in samples}):
        runs = [(model, records) for d, model, records in samples if d == dataset]
        shared = sorted(set.intersection(*(set(records) for _, records in runs)))
        chosen = [i for i in shared if len(runs[0][1][i]["context"]) >= 2][:contexts]
        lines.append(f"=== {dataset}: {len(chosen)} test contexts (the first with >= 2 context utterances), "
                     f"{responses} sampled responses per model ===")
        for index in chosen:
            first = runs[0][1][index]
            lines.append(f"\n--- test example {index}")
            for turn, utterance in enumerate(first["context"]):
                lines.append(f"context {turn}: {' '.join(utterance)}")
            lines.append(f"reference: {' '.join(first['reference'])}")
            for model, records in runs:
                for k, sample in enumerate(records[index]["samples"][:responses]):
                    lines.append(f"{model} #{k + 1}: {' '.join(sample)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", nargs="+", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--contexts", type=int, default=5)
    parser.add_argument("--responses", type=int, default=3)
    args = parser.parse_args(argv)
    write_text_atomic(args.out, render_examples([read_samples(p) for p in args.samples], args.contexts, args.responses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
