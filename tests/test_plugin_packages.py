"""Third-party plugins for real: pip-install packages into a temporary folder and use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.pip


def _pip_install(src: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        check=True, capture_output=True, text=True,
    )


def _pcdkit(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(target), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pcdkit", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_example_plugin_installs_lists_and_runs(tmp_path: Path) -> None:
    target = tmp_path / "site"
    _pip_install(REPO / "plugins" / "pcdkit-example", target)
    listed = _pcdkit(target, "plugins", "list", "--json", cwd=tmp_path)
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    assert rows[("metric", "f-score")]["distribution"] == "pcdkit-example"
    assert rows[("corruption", "outliers")]["status"] == "ok"

    out = tmp_path / "run"
    ran = _pcdkit(target, "run", str(REPO / "plugins" / "pcdkit-example" / "example.yaml"),
                  "--out", str(out), "--quiet", "--set", "dataset.resolution=500", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert 0.0 < summary["f-score"] < 1.0  # outliers lower the F-score below a perfect 1
    assert summary["chamfer"] > 0


def test_broken_plugin_is_reported_and_the_rest_keep_working(tmp_path: Path) -> None:
    pkg = tmp_path / "broken-src"
    (pkg / "pcdkit_broken").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    (pkg / "setup.cfg").write_text(textwrap.dedent("""\
        [metadata]
        name = pcdkit-broken
        version = 6.6.6
        [options]
        packages = find:
        [options.entry_points]
        pcdkit =
            broken = pcdkit_broken.plugin
    """))
    (pkg / "pcdkit_broken" / "__init__.py").write_text("")
    (pkg / "pcdkit_broken" / "plugin.py").write_text(
        "raise ImportError('this plugin needs a library that is not installed')\n")
    target = tmp_path / "site"
    _pip_install(pkg, target)

    listed = _pcdkit(target, "plugins", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    broken = [r for r in rows if r["status"].startswith("broken")]
    assert len(broken) == 1
    assert broken[0]["name"] == "broken" and broken[0]["distribution"] == "pcdkit-broken"
    assert broken[0]["version"] == "6.6.6"
    assert "needs a library that is not installed" in broken[0]["status"]
    assert any(r["name"] == "chamfer" and r["status"] == "ok" for r in rows)

    shown = _pcdkit(target, "plugins", "show", "metric", "chamfer", cwd=tmp_path)
    assert shown.returncode == 0 and "squared" in shown.stdout


def test_third_party_backbone_trains_resumes_and_denoises(tmp_path: Path) -> None:
    target = tmp_path / "site"
    _pip_install(REPO / "plugins" / "pcdkit-example", target)
    shapes = {"plugin": "procedural", "resolution": 800, "shapes": ["superquadric-pillow", "torus"],
              "sampler": "uniform"}
    train = tmp_path / "train.yaml"
    train.write_text(json.dumps({
        "name": "third-party-train", "device": "cpu", "seed": 1,
        "job": {"plugin": "train-denoiser", "iterations": 200, "batch_size": 8,
                "patch_size": 200, "lr": 3e-3, "log_every": 10, "checkpoint_every": 50,
                "val_every": 200, "val_shapes": 1, "val_noises": [0.02]},
        "backbone": {"plugin": "displacement"},
        "datasets": [shapes], "val_dataset": shapes | {"shapes": ["octahedron"]}}))
    run = tmp_path / "run"
    first = _pcdkit(target, "run", str(train), "--out", str(run), "--quiet", "--set",
                    "job.iterations=100", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = _pcdkit(target, "run", str(train), "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    steps = [int(line.split(",")[0]) for line in
             (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(10, 201, 10))  # one history across the resume
    metrics = json.loads((run / "metrics.json").read_text())
    noisy = json.loads((run / "validation_noisy.json").read_text())
    assert metrics["val_cd"] < noisy["cd"]  # the trained network denoises its validation shape

    evaluate = tmp_path / "eval.yaml"
    evaluate.write_text(json.dumps({
        "name": "third-party-eval", "device": "cpu", "seed": 2,
        "job": {"plugin": "evaluate"}, "dataset": shapes | {"shapes": ["cube"]},
        "corruption": {"plugin": "gaussian", "std": 0.02},
        "backbone": {"plugin": "displacement",
                     "checkpoint": str(run / "checkpoints" / "model.pt")},
        "metrics": ["chamfer"]}))
    out = tmp_path / "eval"
    ran = _pcdkit(target, "run", str(evaluate), "--out", str(out), "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    assert summary["chamfer"] < summary["input_chamfer"]
