"""Issue 14's quality rule from a ``compare-denoisers`` table: a variant against ``faithful``.

Run: ``python benchmarks/quality_rule.py RUN/per_shape.csv [--variant LABEL] [--baseline-table
OTHER/per_shape.csv]`` (the baseline's rows from another run of the same seed and shapes, whose
noisy inputs are the same). For each
(points, noise) and metric, over the shapes both methods finished: the means, the variant's
mean change and its worst shape (largest ratio to faithful). The rule: means within 1 %, no
shape worse by more than 3 %.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def main() -> None:
    """Print one line per (points, noise, metric)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("table", type=Path, help="per_shape.csv of a compare-denoisers run")
    ap.add_argument("--variant", default="fast compiled", help="the method label to check")
    ap.add_argument("--baseline", default="faithful", help="the method label to compare with")
    ap.add_argument("--baseline-table", type=Path, default=None,
                    help="take the baseline's rows from this per_shape.csv instead")
    args = ap.parse_args()
    cells: dict[tuple[str, str], dict[str, dict[str, dict[str, str]]]] = defaultdict(dict)
    sources = [(args.table, args.variant), (args.baseline_table or args.table, args.baseline)]
    for table, method in sources:
        with table.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["method"] == method:
                    cells[row["points"], row["noise"]].setdefault(row["shape"], {})[method] = row
    for (points, noise), shapes in sorted(cells.items()):
        both = {s: m for s, m in shapes.items() if args.variant in m and args.baseline in m}
        if not both:  # a run still under way: this setting has no shape with both methods yet
            continue
        for metric in ("chamfer", "p2m"):
            ratio = {s: float(m[args.variant][metric]) / float(m[args.baseline][metric])
                     for s, m in both.items()}
            base = sum(float(m[args.baseline][metric]) for m in both.values()) / len(both)
            var = sum(float(m[args.variant][metric]) for m in both.values()) / len(both)
            worst = max(ratio, key=ratio.__getitem__)
            print(f"{points} points, noise {noise}, {metric} x1e4 ({len(both)} shapes): "
                  f"{args.baseline} {base * 1e4:.4f}, {args.variant} {var * 1e4:.4f}, "
                  f"mean change {100 * (var / base - 1):+.2f} %, worst {worst} "
                  f"{100 * (ratio[worst] - 1):+.2f} %")


if __name__ == "__main__":
    main()
