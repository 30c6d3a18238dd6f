"""compare-denoisers: one table of every method x setting, resumable cell by cell."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pcdkit.core import pipeline
from pcdkit.core.runner import run_pipeline
from pcdkit.errors import ConfigError

SHAPES = {"plugin": "procedural", "shapes": ["torus", "superquadric-pillow"],
          "sampler": "uniform"}
CFG = {"name": "cmp", "device": "cpu", "seed": 0,
       "job": {"plugin": "compare-denoisers", "noises": [0.01, 0.02],
               "labels": ["noisy input", "jet"]},
       "datasets": [SHAPES | {"resolution": 1000}, SHAPES | {"resolution": 2000}],
       "backbones": ["identity", {"plugin": "jet", "k": 16}],
       "metrics": ["chamfer", "p2m"]}


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "per_shape.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_cell_is_scored_and_tabled_beside_the_published_rows(tmp_path: Path) -> None:
    run, metrics = run_pipeline(pipeline.validate(CFG), out=tmp_path / "r", quiet=True)
    rows = _rows(run.path)
    assert len(rows) == 2 * 2 * 2 * 2  # datasets x noises x shapes x methods
    table = {(r["points"], r["noise"], r["method"]): r for r in metrics["table"]}
    for points in (1000, 2000):
        for noise in (0.01, 0.02):
            assert table[(points, noise, "jet")]["chamfer"] < table[
                (points, noise, "noisy input")]["chamfer"]
    text = (run.path / "table.md").read_text()
    assert "| jet |" in text and "| noisy input |" in text
    assert "Published" not in text  # the paper has no 1K / 2K rows


def test_resume_skips_cells_already_scored(tmp_path: Path) -> None:
    run, _ = run_pipeline(pipeline.validate(CFG), out=tmp_path / "r", quiet=True)
    rows = _rows(run.path)
    with open(run.path / "per_shape.csv", "w", newline="") as f:  # interrupted after 5 cells
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows[:5])
    run_pipeline(pipeline.validate(CFG), resume=run.path, quiet=True)
    again = _rows(run.path)
    assert again[:5] == rows[:5] and len(again) == len(rows)
    key = ("points", "noise", "method", "shape")
    assert sorted(tuple(r[k] for k in key) for r in again) == sorted(
        tuple(r[k] for k in key) for r in rows)
    done = {tuple(r[k] for k in key): r["chamfer"] for r in rows}
    assert all(done[tuple(r[k] for k in key)] == r["chamfer"] for r in again)


def test_labels_must_name_each_backbone_once() -> None:
    with pytest.raises(ConfigError, match="job.labels: expected 2 different labels"):
        pipeline.validate(CFG | {"job": CFG["job"] | {"labels": ["a", "a"]}})
