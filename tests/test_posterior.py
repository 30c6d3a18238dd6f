"""Posterior sampling: operators, the Langevin sampler's limits, the job end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pcdkit.backbones.score_denoise.denoise import denoise_cloud, score_field
from pcdkit.core import pipeline, registry
from pcdkit.core.runner import run_pipeline
from pcdkit.errors import PcdkitError
from pcdkit.jobs.tables import write_tables
from pcdkit.metrics.chamfer import chamfer_distance
from pcdkit.metrics.protocol import summarize
from pcdkit.operators.langevin import LangevinSettings, posterior_sample
from pcdkit.operators.points import GaussianMeasurement, Subsample


def _sphere(n: int, seed: int = 0) -> torch.Tensor:
    p = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return p / p.norm(dim=1, keepdim=True)


class _NoPrior:
    def score(self, points: torch.Tensor) -> torch.Tensor:
        raise AssertionError("a likelihood-only sampler must not ask the prior")


def test_likelihood_only_sampler_returns_the_measurement() -> None:
    op = GaussianMeasurement(0.01)
    y = op.measure(_sphere(500), generator=torch.Generator().manual_seed(1))
    s = LangevinSettings(prior_weight=0.0, temperature=0.0, levels=3, steps=20, step=0.5)
    x = posterior_sample(_NoPrior(), op, y, len(y), s)
    assert torch.allclose(x, y, atol=1e-5)


def test_subsample_measures_a_fraction_and_its_likelihood_pulls_nearest_points() -> None:
    clean = _sphere(400)
    op = Subsample(0.25, 0.0, 0.5)
    y = op.measure(clean, generator=torch.Generator().manual_seed(0))
    assert len(y) == 100 and all((clean == p).all(1).any() for p in y)
    x = op.initial(y, 400, generator=torch.Generator().manual_seed(1))
    assert x.shape == (400, 3) and torch.equal(x[:100], y)
    g = op.grad_log_likelihood(x, y)
    assert torch.count_nonzero(g.abs().sum(1)) <= 100  # only points nearest a measurement move
    moved = x + 1e-5 * g  # a small step along the gradient fits the measurement better
    assert float(chamfer_distance(y, moved, direction="x_to_y")) <= float(
        chamfer_distance(y, x, direction="x_to_y"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pcdkit.backbones.score_denoise.convert import convert_reference
    from tests.test_score_denoise import REFERENCE, need

    dst = tmp_path_factory.mktemp("ckpt") / "reference.pt"
    convert_reference(need(REFERENCE), dst)
    return dst


def _noisy_sphere(n: int, std: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    clean = _sphere(n, seed)
    return clean, clean + std * torch.randn(clean.shape, generator=torch.Generator()
                                            .manual_seed(seed + 1))


def test_score_field_points_towards_the_surface(reference: Path) -> None:
    from pcdkit.backbones.score_denoise.backbone import load_network

    _, noisy = _noisy_sphere(3000, 0.02, 0)
    d = score_field(load_network(reference), noisy)
    before = (noisy.norm(dim=1) - 1).abs().mean()
    after = ((noisy + d).norm(dim=1) - 1).abs().mean()
    assert after < 0.6 * before  # one Tweedie step removes most of the radial noise


@pytest.mark.parametrize("refresh", ["step", "level"])
def test_gaussian_special_case_without_likelihood_denoises_like_the_denoiser(
        reference: Path, refresh: str) -> None:
    """Likelihood off and no injected noise: the sampler is gradient ascent on the learned
    prior, like the denoiser's fixed-point iteration; both land close to the surface."""
    prior = registry.create("backbone", "score-denoise", {"checkpoint": reference})
    _, noisy = _noisy_sphere(3000, 0.02, 3)
    s = LangevinSettings(temperature=0.0, likelihood_weight=0.0, levels=1, steps=10, step=0.5,
                         tweedie=False, refresh=refresh)
    x = posterior_sample(prior, GaussianMeasurement(0.02), noisy, len(noisy), s)
    off = {name: float((c.norm(dim=1) - 1).abs().mean()) for name, c in  # distance to surface
           (("noisy", noisy), ("sampler", x), ("denoiser", denoise_cloud(prior.net, noisy)))}
    # measured: noisy 0.0158, denoiser 0.0064; sampler 0.0082 re-reading features from the
    # current cloud each step, 0.0053 keeping those of the noisy input as the denoiser does
    assert off["sampler"] < 0.6 * off["noisy"] and off["denoiser"] < 0.5 * off["noisy"]
    assert off["sampler"] < 1.4 * off["denoiser"]


def test_frozen_field_is_the_score_field_where_it_was_read(reference: Path) -> None:
    prior = registry.create("backbone", "score-denoise", {"checkpoint": reference})
    _, noisy = _noisy_sphere(3000, 0.02, 4)
    field = prior.frozen(noisy)
    assert torch.allclose(field(noisy), prior.score(noisy), atol=1e-6)
    moved = noisy + 0.3 * field(noisy)  # nearby: same patches and features, new frames
    assert not torch.allclose(field(moved), field(noisy), atol=1e-4)
    assert float((field(moved) - prior.score(moved)).norm(dim=1).mean()) < 0.5 * float(
        prior.score(moved).norm(dim=1).mean())


def _posterior_job(checkpoint: Path, job: dict, shapes: list[str], resolution: int,
                   fraction: float) -> pipeline.Pipeline:
    return pipeline.validate({
        "name": "post", "device": "cpu", "seed": 0, "job": {"plugin": "posterior-sample", **job},
        "dataset": {"plugin": "procedural", "resolution": resolution, "shapes": shapes,
                    "sampler": "uniform"},
        "operator": {"plugin": "subsample", "fraction": fraction},
        "prior": {"plugin": "score-denoise", "checkpoint": str(checkpoint), "patch_size": 200},
        "metrics": ["chamfer"]})


def test_posterior_job_reports_samples_spread_and_baselines(tmp_path: Path,
                                                            checkpoint: Path) -> None:
    """Plumbing with random weights: every figure is there."""
    pipe = _posterior_job(checkpoint, {"samples": 2, "levels": 2, "steps": 2,
                                       "denoise_samples": True}, ["torus"], 800, 0.25)
    _, metrics = run_pipeline(pipe, out=tmp_path / "r", quiet=True)
    row = metrics["per_shape"][0]
    assert row["measured"] == 200
    for key in ("posterior_chamfer", "posterior_chamfer_std", "posterior_spread",
                "posterior+denoise_chamfer", "posterior+denoise_chamfer_std",
                "posterior+denoise_spread", "start_chamfer", "start+denoise_chamfer",
                "midpoints_chamfer", "midpoints+denoise_chamfer"):
        assert key in row and row[key] >= 0
    assert row["posterior_spread"] > 0  # two Langevin samples differ
    # the denoiser moves the samples: a different figure, not a copy of the raw samples'
    assert row["posterior+denoise_chamfer"] != row["posterior_chamfer"]


def test_midpoint_start_keeps_the_measurement_and_fills_between_neighbours() -> None:
    y = _sphere(400)
    op = Subsample(0.25, 0.0, 0.0, start="midpoints")
    x = op.initial(y, 1600)
    assert torch.equal(x[:400], y)
    # new points lie halfway between two measured points: inside the sphere, near its surface
    radii = x[400:].norm(dim=1)
    assert bool((radii < 1).all()) and float(radii.min()) > 0.9
    with pytest.raises(PcdkitError, match="too few"):
        Subsample(0.25, 0.0, 0.0, start="midpoints").initial(y[:3], 1600)


def test_resumed_posterior_job_redoes_only_unfinished_shapes(tmp_path: Path,
                                                            checkpoint: Path) -> None:
    pipe = _posterior_job(checkpoint, {"samples": 1, "levels": 1, "steps": 1, "baselines": False},
                          ["torus", "cube"], 400, 0.5)
    run, first = run_pipeline(pipe, out=tmp_path / "r", quiet=True)
    file = run.path / "shapes.jsonl"
    lines = file.read_text().splitlines()
    file.write_text(lines[0] + "\n" + lines[1][:20])  # a crash while writing the second shape
    _, again = run_pipeline(pipe, resume=run.path, quiet=True)
    assert again["per_shape"] == first["per_shape"]
    assert len(file.read_text().splitlines()) == 2


def test_a_run_resumed_with_more_figures_averages_only_figures_every_shape_has(
        tmp_path: Path) -> None:
    rows = [{"shape": "a", "posterior_chamfer": 1.0},
            {"shape": "b", "posterior_chamfer": 3.0, "posterior+denoise_chamfer": 2.0}]
    mean = summarize(rows)
    assert mean == {"posterior_chamfer": 2.0}
    write_tables(rows, mean, tmp_path / "t.csv", tmp_path / "t.md")
    assert (tmp_path / "t.md").read_text().splitlines()[-1] == "| **mean** | 2.0000 |"
