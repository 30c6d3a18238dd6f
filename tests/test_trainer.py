"""The shared training loop: schedules, named random streams, one resume semantics."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pcdkit.cli import main
from pcdkit.core import pipeline
from pcdkit.core.context import JobContext
from pcdkit.core.rundir import RunDir
from pcdkit.core.runner import run_pipeline
from pcdkit.core.trainer import TrainSettings
from pcdkit.errors import PcdkitError
from tests.test_dynamics import _tiny


def _settings(**kw: object) -> TrainSettings:
    return TrainSettings(**{"iterations": 100, "lr": 1e-2, "log_every": 10,
                            "checkpoint_every": 10, **kw})


def test_warmup_then_cosine_reaches_lr_min_at_the_last_step() -> None:
    s = _settings(warmup=10, lr_schedule="cosine", lr_min=1e-4)
    assert s.lr_factor(0) == pytest.approx(0.1) and s.lr_factor(9) == 1.0
    assert s.lr_factor(10) == 1.0
    assert s.lr_factor(55) == pytest.approx((1e-2 + 1e-4) / 2 / 1e-2)
    assert s.lr_factor(100) * s.lr == pytest.approx(1e-4)


def test_exponential_schedule_decays_once_per_period() -> None:
    s = _settings(lr_schedule="exponential", lr_decay=0.5, decay_every=7)
    assert [s.lr_factor(i) for i in (0, 6, 7, 14)] == [1.0, 1.0, 0.5, 0.25]


def test_evaluations_fall_on_the_period_and_on_the_last_step() -> None:
    s = _settings(eval_every=30)
    assert [d for d in range(1, 101) if s.evaluates_at(d)] == [30, 60, 90, 100]
    assert [d for d in range(1, 101) if _settings().evaluates_at(d)] == [100]


def test_named_streams_are_reproducible_distinct_and_per_rank(tmp_path: Path) -> None:
    pipe = _tiny()
    run = RunDir(tmp_path)

    def draw(stream: str, index: int = 0, rank: int = 0, seed: int = 1) -> torch.Tensor:
        ctx = JobContext(pipe, torch.device("cpu"), torch.Generator(), run, rank=rank)
        ctx.pipeline.seed = seed
        return torch.rand(4, generator=ctx.generator_for(stream, index))

    assert torch.equal(draw("training"), draw("training"))
    others = [draw("validation"), draw("training", index=1), draw("training", rank=1),
              draw("training", seed=2)]
    assert all(not torch.equal(draw("training"), o) for o in others)
    run.close()


def test_a_resume_takes_the_new_learning_rate_in_every_training_job(tmp_path: Path) -> None:
    part, _ = run_pipeline(_tiny(iterations=2), out=tmp_path / "r", quiet=True)
    run_pipeline(_tiny(lr=5e-4), resume=part.path, quiet=True)
    rows = list(csv.DictReader((part.path / "metrics.csv").open()))
    lrs = [float(r["lr"]) for r in rows]
    # (lr_decay 0.999 per epoch of 2 steps: the schedule continues, at the new base rate)
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4 * 0.999, 5e-4 * 0.999])
    assert all(math.isfinite(float(r["grad_norm"])) for r in rows)


def test_a_cpu_budget_stops_evaluates_and_saves_and_a_resume_keeps_counting_steps_and_time(
        tmp_path: Path) -> None:
    budget = dict(iterations=10_000, eval_every=10_000, cpu_minutes=0.005)  # 0.3 CPU-seconds
    run, first = run_pipeline(_tiny(**budget), out=tmp_path / "r", quiet=True)
    steps = first["steps"]
    assert 1 <= steps < 10_000 and first["cpu_minutes_used"] >= 0.005
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == steps and rows[-1]["interp_mse"]  # evaluated at the stop
    _, same = run_pipeline(_tiny(**budget), resume=run.path, quiet=True)
    assert same["steps"] == steps  # the budget is spent: nothing more runs
    assert same["seconds"] > first["seconds"]  # wall time of every invocation, not the last
    larger = first["cpu_minutes_used"] + 0.05  # three more CPU-seconds: a step or more
    _, more = run_pipeline(_tiny(**budget | {"cpu_minutes": larger}), resume=run.path,
                           quiet=True)
    # cpu_minutes_used is reported to three decimals: 0.05903 reads 0.059 < larger 0.059 + 4e-18
    assert more["steps"] > steps and more["cpu_minutes_used"] >= larger - 5e-4


def test_a_resume_of_a_run_stopped_before_its_first_checkpoint_starts_afresh(
        tmp_path: Path) -> None:
    run, first = run_pipeline(_tiny(iterations=2), out=tmp_path / "r", quiet=True)
    (run.path / "checkpoints" / "last.pt").unlink()
    with pytest.raises(PcdkitError, match="last.pt not found"):  # finished: results are kept
        run_pipeline(_tiny(iterations=2), resume=run.path, quiet=True)
    assert (run.path / "metrics.json").is_file()
    (run.path / "metrics.json").unlink()  # now as if killed before the first save
    _, again = run_pipeline(_tiny(iterations=2), resume=run.path, quiet=True)
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]  # re-logged once, not appended twice
    assert again["interp_mse"] == pytest.approx(first["interp_mse"], rel=1e-6)
    assert "starting from step 0" in (run.path / "log.txt").read_text()


def test_single_process_jobs_refuse_torchrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from pcdkit.core.trainer import Trainer
    from pcdkit.errors import PcdkitError

    run = RunDir(tmp_path)
    ctx = JobContext(pipeline.validate(_tiny().resolved()), torch.device("cpu"),
                     torch.Generator(), run, world_size=2)
    net = torch.nn.Linear(2, 2)
    with pytest.raises(PcdkitError, match="trains on one process"):
        Trainer(ctx, _settings(), {"model": net}, torch.optim.SGD(net.parameters(), lr=0.1),
                generator=torch.Generator(), distributed=False)
    run.close()


def test_a_run_made_before_a_setting_existed_resumes_with_its_default(tmp_path: Path) -> None:
    run, _ = run_pipeline(_tiny(iterations=2), out=tmp_path / "r", quiet=True)
    file = run.path / "config.yaml"
    old = yaml.safe_load(file.read_text())
    del old["model"]["igo_weights"]  # as written by a pcdkit without that setting
    file.write_text(yaml.safe_dump(old, sort_keys=False))
    _, resumed = run_pipeline(_tiny(iterations=3), resume=run.path, quiet=True)
    assert resumed["steps"] == 3
    old["model"]["igo_weights"] = True  # a real difference is still refused
    file.write_text(yaml.safe_dump(old, sort_keys=False))
    with pytest.raises(PcdkitError, match="differs from the run's config.yaml in model"):
        run_pipeline(_tiny(iterations=4), resume=run.path, quiet=True)


def test_sigterm_saves_the_step_in_progress_and_a_resume_continues_from_it(
        tmp_path: Path) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({
        "name": "t", "device": "cpu", "job": {
            "plugin": "train-denoiser", "iterations": 10**6, "batch_size": 1, "patch_size": 100,
            "log_every": 1, "checkpoint_every": 10**6, "val_shapes": 0},
        "backbone": {"plugin": "score-denoise", "num_points": 8, "frame_knn": 8},
        "datasets": [{"plugin": "procedural", "resolution": 300, "shapes": ["cube"],
                      "sampler": "uniform"}]}))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pcdkit", "run", str(pipe), "--out", str(run),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    history = run / "metrics.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
            not history.is_file() or len(history.read_text().splitlines()) < 4):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and f"--resume {run}" in err
    rows = list(csv.DictReader(history.open()))
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert step == int(rows[-1]["step"]) >= 3  # no checkpoint was due: the stop saved it
    assert not (run / "metrics.json").exists()  # not finished: no final figures
    log = (run / "log.txt").read_text()
    assert "run failed" not in log and f"stopped by SIGTERM at step {step}" in log  # a stop
    assert main(["run", str(pipe), "--resume", str(run), "--quiet",
                 "--set", f"job.iterations={step + 2}"]) == 0
    rows = list(csv.DictReader(history.open()))
    assert [int(r["step"]) for r in rows][-3:] == [step, step + 1, step + 2]
