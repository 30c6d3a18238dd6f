"""``report.html``: a self-contained page per run directory (no network needed to view it).

Settings (``config.yaml``), the headline metrics, the per-shape table (x 1e4, as the papers
print), the training history's last rows, and every picture of the run embedded as a data URI.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

from pcdkit.core.atomic import atomic_write_text
from pcdkit.metrics.protocol import TABLE_SCALE

#: pictures embedded at most (a run with hundreds of per-shape PNGs links the folder instead)
MAX_PICTURES = 40


def write_report(folder: Path) -> Path:
    """Write ``folder/report.html`` from what the run left in ``folder``."""
    title = folder.name
    parts = [f"<h1>pcdkit run {html.escape(str(folder))}</h1>"]
    config = folder / "config.yaml"
    if config.is_file():
        parts.append("<h2>Settings</h2><pre>" + html.escape(config.read_text("utf-8")) + "</pre>")
    metrics = _json(folder / "metrics.json")
    if metrics:
        parts.append("<h2>Metrics (raw values)</h2>" + _metrics_table(metrics))
    shapes = _rows(folder / "per_shape.csv")
    if shapes:
        parts.append(f"<h2>Per shape (x {TABLE_SCALE:g})</h2>" + _table(shapes, scale=True))
    history = _rows(folder / "metrics.csv")
    if history:
        parts.append(f"<h2>Training history (last 20 of {len(history)} rows)</h2>"
                     + _table(history[-20:], scale=False))
    pictures = sorted(folder.glob("*.png")) + sorted(folder.glob("pictures/*.png"))
    if pictures:
        parts.append("<h2>Pictures</h2>")
        for png in pictures[:MAX_PICTURES]:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            name = html.escape(str(png.relative_to(folder)))
            parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{name}</figcaption></figure>")
        if len(pictures) > MAX_PICTURES:
            parts.append(f"<p>{len(pictures) - MAX_PICTURES} more pictures in "
                         f"{html.escape(str(folder / 'pictures'))}</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:"
             "collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
             "img{max-width:100%}pre{background:#f6f6f6;padding:1em}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    return atomic_write_text(folder / "report.html", page)


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _cell(value: Any, scale: bool) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if scale and not float(number).is_integer():
        return f"{number * TABLE_SCALE:.4f}"
    return f"{number:.6g}"


def _table(rows: list[dict[str, str]], scale: bool) -> str:
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''), scale)}</td>" for c in cols)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_table(metrics: dict[str, Any]) -> str:
    flat = {k: v for k, v in metrics.get("summary", metrics).items()
            if isinstance(v, (int, float, str)) and k != "per_shape"}
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(v, False)}</td></tr>"
                   for k, v in flat.items())
    return f"<table>{body}</table>"
