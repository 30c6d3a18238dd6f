"""The evaluation job end to end, checked against what the noise model predicts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pcdkit.core import pipeline
from pcdkit.core.runner import run_pipeline


def _run(tmp_path: Path, **over: object) -> tuple[Path, dict]:
    cfg = {
        "name": "t",
        "device": "cpu",
        "job": {"plugin": "evaluate", "save_clouds": True},
        "dataset": {"plugin": "procedural", "resolution": 3000, "shapes": ["cube", "octahedron"]},
        "corruption": {"plugin": "gaussian", "std": 0.01},
        "metrics": ["chamfer", {"plugin": "p2m", "direction": "point_to_face"}, "p2m"],
    } | over
    run, metrics = run_pipeline(pipeline.validate(cfg), out=tmp_path / "run", quiet=True)
    return run.path, metrics


def test_point_to_face_error_of_noisy_flat_shapes_is_the_noise_variance(tmp_path: Path) -> None:
    out, metrics = _run(tmp_path)
    # on planar faces the squared distance to the surface is the normal noise component squared,
    # whose mean is std^2 (std relative to the unit-sphere radius)
    for row in metrics["per_shape"]:
        assert row["p2m#2"] >= row["p2m"]  # both terms >= the point->face term alone
        assert row["p2m"] == pytest.approx(1e-4, rel=0.1)
    table = list(csv.DictReader((out / "per_shape.csv").open()))
    assert [r["shape"] for r in table] == ["cube", "octahedron", "mean"]
    md = (out / "per_shape.md").read_text()
    assert "p2m#2 (x10000)" in md and "| **mean** |" in md
    assert (out / "clouds" / "cube_input.xyz").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["summary_scaled"]["p2m#2"] == pytest.approx(saved["summary"]["p2m#2"] * 1e4)


def test_without_corruption_clean_clouds_score_zero_point_to_face(tmp_path: Path) -> None:
    _, metrics = _run(tmp_path, corruption=None)
    assert metrics["summary"]["p2m"] < 1e-10
