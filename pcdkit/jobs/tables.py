"""Writing per-item result tables: raw values as CSV, scaled values as Markdown."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_tables(
    rows: Sequence[Mapping[str, Any]], mean: Mapping[str, float], csv_path: Path, md_path: Path,
    scale: float = 1.0, title: str = "",
) -> None:
    """Rows (first column = name) plus a mean row; float cells times ``scale`` in Markdown.
    The columns are the first row's (a cell missing from a later row stays empty)."""
    if not rows:
        return
    cols = list(rows[0])
    last = {cols[0]: "mean", **{c: mean.get(c, "") for c in cols[1:]}}
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, cols, restval="", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        w.writerow(last)

    def fmt(v: Any) -> str:
        return f"{v * scale:.4f}" if isinstance(v, float) else str(v)

    head = [c if i == 0 or scale == 1 or not isinstance(rows[0][c], float) else
            f"{c} (x{scale:g})" for i, c in enumerate(cols)]
    lines = ([f"# {title}", ""] if title else []) + [
        "| " + " | ".join(head) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    lines.append("| **mean** | " + " | ".join(fmt(last[c]) for c in cols[1:]) + " |")
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
