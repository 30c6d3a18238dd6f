"""The seeds job: every variant x seed as a resumable run, mean and spread of every figure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from pcdkit.core import pipeline
from pcdkit.core.runner import run_pipeline
from pcdkit.errors import ConfigError
from pcdkit.jobs.seeds import flatten, mean_std
from tests.test_dynamics import _tiny


def _sweep(base: Path, **job: object) -> pipeline.Pipeline:
    return pipeline.validate({
        "name": "sweep", "job": {"plugin": "seeds", "pipeline": str(base), "seeds": [0, 1],
                                 "variants": {"igo": {}, "control": {
                                     "model.igo": False, "model.igo_weights": True}},
                                 "figures": ["interp_mse", "extrap_mse", "steps"], **job}})


def test_every_variant_and_seed_runs_once_and_the_summary_spreads_over_seeds(
        tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(_tiny(iterations=2).resolved()))
    run, metrics = run_pipeline(_sweep(base), out=tmp_path / "s", quiet=True)
    rows = list(csv.DictReader((run.path / "runs.csv").open()))
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("igo", "0"), ("igo", "1"), ("control", "0"), ("control", "1")]
    assert rows[0]["interp_mse"] != rows[1]["interp_mse"]  # seeds differ
    cfg = yaml.safe_load((run.path / "runs" / "control-seed1" / "config.yaml").read_text())
    assert cfg["seed"] == 1 and cfg["model"]["igo_weights"] and not cfg["model"]["igo"]
    cell = metrics["summary"]["interp_mse"]["igo"]
    values = [float(r["interp_mse"]) for r in rows[:2]]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(sum(values) / 2)
    assert cell["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert "| interp_mse |" in (run.path / "summary.md").read_text()
    # a resume skips finished members; a larger budget continues each of them
    done = run.path / "runs" / "igo-seed0" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    run_pipeline(_sweep(base), resume=run.path, quiet=True)
    assert done.stat().st_mtime_ns == stamp
    _, more = run_pipeline(_sweep(base, common={"job.iterations": 3}), resume=run.path,
                           quiet=True)
    assert more["summary"]["steps"]["control"]["mean"] == 3
    assert json.loads(done.read_text())["steps"] == 3


def test_paired_differences_are_taken_within_each_seed(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(_tiny(iterations=2).resolved()))
    run, metrics = run_pipeline(_sweep(base, paired_with="control"), out=tmp_path / "s",
                                quiet=True)
    rows = {(r["variant"], r["seed"]): float(r["interp_mse"])
            for r in csv.DictReader((run.path / "runs.csv").open())}
    diffs = [rows["igo", s] - rows["control", s] for s in ("0", "1")]
    cell = metrics["paired"]["interp_mse"]["igo"]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(sum(diffs) / 2)
    assert cell["std"] == pytest.approx(abs(diffs[0] - diffs[1]) / 2 ** 0.5)
    assert cell["t"] == pytest.approx(cell["mean"] / (cell["std"] / 2 ** 0.5))
    assert "control" not in metrics["paired"]["interp_mse"]  # itself minus itself: no row
    assert "| interp_mse |" in (run.path / "paired.md").read_text()
    with pytest.raises(ConfigError, match="job.paired_with"):
        _sweep(base, paired_with="nonesuch").job.create()


def test_a_member_stopped_mid_way_through_a_larger_budget_is_resumed_not_counted_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcdkit.core.trainer import Trainer

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(_tiny(iterations=2).resolved()))
    run, _ = run_pipeline(_sweep(base, seeds=[0]), out=tmp_path / "s", quiet=True)
    member = run.path / "runs" / "igo-seed0"
    assert json.loads((member / "metrics.json").read_text())["config"] == "config.yaml"
    fit = Trainer.fit

    def killed(self: Trainer, *args: object, **kw: object) -> object:
        raise KeyboardInterrupt  # the resume at the larger budget dies before it finishes

    monkeypatch.setattr(Trainer, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_sweep(base, seeds=[0], common={"job.iterations": 3}), resume=run.path,
                     quiet=True)
    monkeypatch.setattr(Trainer, "fit", fit)
    # its metrics.json is still the 2-step one, and its newest config is the 3-step one
    _, more = run_pipeline(_sweep(base, seeds=[0], common={"job.iterations": 3}),
                           resume=run.path, quiet=True)
    assert more["summary"]["steps"]["igo"]["mean"] == 3
    finished = json.loads((member / "metrics.json").read_text())
    assert finished["steps"] == 3 and finished["config"].startswith("config.resume-")


def test_older_metrics_of_a_resumed_member_count_only_at_the_budget(tmp_path: Path) -> None:
    from pcdkit.jobs.seeds import _finished

    pipe = _tiny(cpu_minutes=30)
    text = yaml.safe_dump(pipe.resolved(), sort_keys=False)
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "config.resume-20260101-000000.yaml").write_text(text)
    for used, done in ((10.0, False), (30.0, True)):  # no "config": written before the field
        (tmp_path / "metrics.json").write_text(json.dumps({"cpu_minutes_used": used}))
        assert (_finished(tmp_path, pipe) is not None) == done


def test_bad_variants_and_seeds_are_config_errors_before_anything_runs(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(_tiny(iterations=2).resolved()))
    for job, key in (({"variants": {"a/b": {}}}, "job.variants.a/b"),
                     ({"seeds": [1, 1]}, "job.seeds"),
                     ({"variants": {"bad": {"model.igo": "often"}}}, "job.variants.bad"),
                     ({"variants": {"bad": {"modle.igo": True}}}, "modle")):
        with pytest.raises(ConfigError, match=key):  # at validate time: no run starts
            _sweep(base, **job)
    assert not (tmp_path / "x").exists()


def test_figures_flatten_nested_numbers_and_spread_is_the_sample_std() -> None:
    assert flatten({"a": 1, "b": {"c": 2.5, "d": [1]}, "e": True, "f": "x"}) == {
        "a": 1.0, "b.c": 2.5}
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([4.0]) == (4.0, 0.0)
