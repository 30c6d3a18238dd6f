"""Image generation with IGO: U-Net and heads, score-matching target, samplers, FD, pipelines."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import DATA, REPO, need

from pcdkit.backbones.score_unet import ScoreUNet
from pcdkit.checkpoints import load_checkpoint
from pcdkit.core import pipeline
from pcdkit.core.runner import run_pipeline
from pcdkit.corruptions.processes import CatMap, GaussianVE
from pcdkit.corruptions.sde import from_functions
from pcdkit.datasets.mnist import mnist
from pcdkit.errors import PcdkitError
from pcdkit.generation.classifier import train_classifier
from pcdkit.generation.loss import igo_score_loss
from pcdkit.generation.samplers import predictor_corrector, probability_flow, reverse_sde
from pcdkit.heads.igo_unet import IGOUNetHeads
from pcdkit.metrics.frechet import frechet_distance
from pcdkit.ode import ODEFailure, solve

MNIST = DATA / "dynamics" / "mnist_kelas"
CPU = torch.device("cpu")


def test_intermediate_generator_replaces_the_outer_blocks_with_igo_shapes() -> None:
    net = ScoreUNet()
    heads = IGOUNetHeads(net, [0.25, 0.5])
    enc, dec = heads.pair(0.5)
    assert (enc.kernel_size, enc.stride, dec.kernel_size, dec.stride) == ((5, 5), (2, 2),
                                                                          (6, 6), (2, 2))
    x, t = torch.rand(3, 1, 28, 28), torch.rand(3)
    assert enc(x).shape == (3, 64, 12, 12)  # the U-Net's second level
    out = net(x, t, torch.ones(3), heads.pair(0.25))
    assert out.shape == (3, 1, 28, 28)
    with torch.no_grad():  # the path really goes through E_tau / D_tau
        assert not torch.allclose(out, net(x, t, torch.ones(3)))
    over = heads.overhead(net)
    assert over["heads"] == 2 * (1 * 64 * 25 + 128 * 36 + 1)
    assert over["igo_total"] < 1.02 * over["backbone"] < over["separate_networks"]


def test_em_kernel_of_a_drift_free_process_has_the_simulated_variance() -> None:
    proc = from_functions(lambda x, t: torch.zeros_like(x), lambda x, t: 0.5 + t, steps=50)
    x0 = torch.rand(4000, 3)
    c = proc(x0, generator=torch.Generator().manual_seed(1), kernel=True)
    assert torch.equal(c.means[1.0], x0)
    expected = c.variances[1.0]  # sum of b^2 dt on the grid, per sample
    ratio = ((c.x_t - x0) ** 2).mean(1) / expected
    assert abs(float(ratio.mean()) - 1) < 0.05
    assert torch.allclose(proc.kernel_std(c.t) ** 2, expected, rtol=1e-5)
    assert set(c.means) == {0.5, 1.0}


def test_ve_em_kernel_matches_the_closed_form() -> None:
    t = torch.full((8,), 0.7)
    em = GaussianVE(25.0, "em", 1e-3, 1.0, 1000)
    assert torch.allclose(em.kernel_std(t), em.marginal_std(t), rtol=0.01)


def test_cat_map_kernel_mean_is_the_noise_free_drift_path() -> None:
    proc = CatMap(rate=2.0, noise=0.0, sigma=1.0, t_min=1.0, t_max=1.0, steps=20)
    x0 = torch.rand(2, 1, 8, 8)
    c = proc(x0, generator=torch.Generator().manual_seed(0), kernel=True)
    assert torch.allclose(c.x_t, c.means[1.0])  # no noise: x follows the mean path
    assert not torch.allclose(c.x_t, x0)  # and the drift moved the pixels


class _ExactScore(torch.nn.Module):
    """s(x, t) = -(x - c) / std^2: the true score when all data equal c (VE process)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, std, path=None):  # noqa: ANN001, ANN201 - test double
        return -(x - self.c) / std.view(-1, 1, 1, 1) ** 2 + self.w


def test_score_matching_loss_vanishes_for_the_true_score_and_weights_by_alpha() -> None:
    proc = GaussianVE(25.0, "closed", 1e-3, 1.0, 100)
    x0 = torch.full((16, 1, 28, 28), 0.3)
    gen = torch.Generator().manual_seed(0)
    loss, parts = igo_score_loss(_ExactScore(0.3), None, proc, x0, 1.0, gen)
    assert loss.item() < 1e-6 and set(parts) == {"loss_t"}
    wrong, _ = igo_score_loss(_ExactScore(0.0), None, proc, x0, 1.0, gen)
    assert wrong.item() > 1.0
    net = ScoreUNet(channels=(8, 16, 32, 64), embed_dim=32)
    heads = IGOUNetHeads(net, [0.5])
    loss, parts = igo_score_loss(net, heads, proc, x0, 0.8, torch.Generator().manual_seed(0))
    assert set(parts) == {"loss_t", "loss_tau_0.5"}
    assert loss.item() == pytest.approx(0.8 * parts["loss_t"] + 0.2 * parts["loss_tau_0.5"],
                                        rel=1e-5)
    loss.backward()
    assert heads.pair(0.5)[0].weight.grad is not None
    assert net.down1.conv.weight.grad is not None


@pytest.mark.parametrize("sampler", ["ode", "em", "pc"])
def test_samplers_recover_gaussian_data_with_the_exact_score(sampler: str) -> None:
    mu, s0 = 0.5, 0.1
    proc = GaussianVE(25.0, "closed", 1e-3, 1.0, 100)

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        var = s0**2 + proc.marginal_std(t) ** 2
        return -(x - mu) / var.view(-1, 1, 1, 1)

    gen, shape = torch.Generator().manual_seed(0), (4000, 1, 1, 2)
    if sampler == "ode":
        x, nfe = probability_flow(score, proc, shape, generator=gen, device=CPU)
        assert 10 < nfe < 2000
    elif sampler == "pc":
        x = predictor_corrector(score, proc, shape, generator=gen, device=CPU, steps=400,
                                corrector_steps=2)
    else:
        x = reverse_sde(score, proc, shape, generator=gen, device=CPU, steps=400)
    assert float(x.mean()) == pytest.approx(mu, abs=0.01)
    assert float(x.std()) == pytest.approx(s0, rel=0.1)


def test_exact_cat_map_kernel_matches_the_simulated_noise_covariance() -> None:
    proc = CatMap(rate=1.0, noise=1.0, sigma=25.0, t_min=1e-3, t_max=1.0, steps=100)
    n, t = 6, torch.full((20000,), 0.6)
    c = proc(torch.zeros(20000, 1, n, n), generator=torch.Generator().manual_seed(0),
             taus=(0.5,), t=t, kernel=True)
    eye = torch.eye(n * n).reshape(-1, 1, n, n)
    tt = torch.full((n * n,), 0.6)
    for frac, x in ((1.0, c.x_t), (0.5, c.intermediates[0.5])):
        e = (x - c.means[frac]).reshape(20000, -1)
        sigma = proc.apply_covariance(eye, tt, proc.step_of(frac), 1.0).reshape(n * n, -1)
        assert torch.allclose(e.T @ e / len(e), sigma, atol=0.03 * float(sigma.max()))
        inverse = -proc.kernel_score(eye, tt, frac, c.variances[frac][:1]).reshape(n * n, -1)
        assert torch.allclose(inverse @ sigma, torch.eye(n * n), atol=1e-4)
    # the drift damps the noise: the isotropic variance overstates it
    assert float(sigma.diagonal().mean()) < 0.9 * float(c.variances[0.5][0])


@pytest.mark.parametrize("sampler", ["ode", "em", "pc"])
def test_samplers_recover_gaussian_data_under_the_cat_map(sampler: str) -> None:
    mu, s0, n = 0.5, 0.1, 6
    proc = CatMap(rate=1.0, noise=1.0, sigma=25.0, t_min=1e-3, t_max=1.0, steps=100)

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # exact: Sigma_0 = s0^2 I
        return -proc.apply_covariance(x - mu, t, proc.steps, -1.0, initial=s0**2)

    gen, shape = torch.Generator().manual_seed(0), (1500, 1, n, n)
    if sampler == "ode":
        x, _ = probability_flow(score, proc, shape, generator=gen, device=CPU, rtol=1e-4,
                                atol=1e-4)
    elif sampler == "pc":
        x = predictor_corrector(score, proc, shape, generator=gen, device=CPU, steps=250)
    else:
        x = reverse_sde(score, proc, shape, generator=gen, device=CPU, steps=250)
    assert float(x.mean()) == pytest.approx(mu, abs=0.02)
    assert float(x.std()) == pytest.approx(s0, rel=0.15)


def test_ode_failures_become_clear_errors() -> None:
    with pytest.raises(ODEFailure, match="NaN"):
        solve(lambda t, y: y * float("nan"), torch.ones(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ODEFailure, match="rk4"):  # blows up at t = 1: dopri5 underflows
        solve(lambda t, y: y**2, torch.ones(1), torch.tensor([0.0, 2.0]), method="dopri5")
    with pytest.raises(PcdkitError, match="ODE method 'rk5'"):
        solve(lambda t, y: y, torch.ones(1), torch.tensor([0.0, 1.0]), method="rk5")


def test_frechet_distance_matches_the_gaussian_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(100000, 4, generator=g)
    b = torch.randn(100000, 4, generator=g) * 2 + 0.5
    assert frechet_distance(a, b) == pytest.approx(4 * 0.25 + 4 * (1 + 4 - 2 * 2), rel=0.02)
    assert abs(frechet_distance(a, a)) < 1e-8
    with pytest.raises(PcdkitError, match="same D"):
        frechet_distance(a, b[:, :3])


def test_feature_classifier_learns_real_digits() -> None:
    data = mnist(need(MNIST), limit=3000)
    _, acc = train_classifier(data, epochs=2, generator=torch.Generator().manual_seed(0),
                              device=CPU)
    assert acc > 0.85


def _tiny(job: dict, **extra: object) -> pipeline.Pipeline:
    cfg = {"name": "tiny-igo", "seed": 3,
           "job": {"iterations": 4, "batch_size": 8, "log_every": 1, "checkpoint_every": 2,
                   "samples": 6, "sampler": "em", "em_steps": 5, **job},
           "dataset": {"plugin": "mnist", "root": str(need(MNIST)), "limit": 400},
           "backbone": {"plugin": "score-unet", "channels": [8, 16, 32, 64], "embed_dim": 32},
           "head": {"plugin": "igo-unet"},
           "corruption": {"plugin": "cat-map", "noise": 1.0, "sigma": 25.0, "steps": 20}}
    cfg.update(extra)
    return pipeline.validate(cfg)


def test_image_score_pipeline_trains_samples_and_scores(tmp_path: Path) -> None:
    run, metrics = run_pipeline(_tiny({"plugin": "image-score", "alpha": 0.8, "sampler": "all",
                                       "ode_rtol": 1e-2, "ode_atol": 1e-2, "fd": True,
                                       "classifier_epochs": 1}),
                                out=tmp_path / "run", quiet=True)
    for name in ("samples-ode.png", "samples-em.png", "samples-pc.png", "training.png",
                 "metrics.csv"):
        assert (run.path / name).is_file()
    assert all(math.isfinite(metrics[f"fd_{name}"]) for name in ("ode", "em", "pc"))
    assert metrics["igo_parameters"]["heads"] > 0 and metrics["ode_nfe"] > 0
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert len(rows) == 4 and "loss_tau_0.5" in rows[0]
    ckpt = load_checkpoint(run.path / "checkpoints" / "model.pt")
    assert ckpt.model == "score-unet" and ckpt.config["channels"] == [8, 16, 32, 64]
    samples = torch.load(run.path / "samples-em.pt", weights_only=True)
    assert samples.shape == (6, 1, 28, 28)
    assert 0 <= float(samples.min()) <= float(samples.max()) <= 1


def test_image_score_training_resumes_exactly(tmp_path: Path) -> None:
    straight, _ = run_pipeline(_tiny({"plugin": "image-score", "fd": False}),
                               out=tmp_path / "a", quiet=True)
    part, _ = run_pipeline(_tiny({"plugin": "image-score", "fd": False, "iterations": 2}),
                           out=tmp_path / "b", quiet=True)
    _, resumed = run_pipeline(_tiny({"plugin": "image-score", "fd": False}), resume=part.path,
                              quiet=True)
    assert resumed["steps"] == 4 and resumed["cpu_minutes_used"] > 0
    _, again = run_pipeline(_tiny({"plugin": "image-score", "fd": False}), resume=part.path,
                            quiet=True)  # nothing left to train: the last logged loss, not NaN
    last = list(csv.DictReader((part.path / "metrics.csv").open()))[-1]
    assert again["steps"] == 4 and again["final_loss"] == pytest.approx(float(last["loss"]))
    a = torch.load(straight.path / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(part.path / "checkpoints" / "last.pt", weights_only=True)
    assert b["step"] == 4
    for key in ("model", "heads"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), (key, k)
    assert torch.equal(torch.load(straight.path / "samples-em.pt", weights_only=True),
                       torch.load(part.path / "samples-em.pt", weights_only=True))
    only_sample, metrics = run_pipeline(_tiny({
        "plugin": "image-score", "fd": False, "iterations": 0,
        "init_checkpoint": str(straight.path / "checkpoints" / "model.pt")}),
        out=tmp_path / "c", quiet=True)
    assert metrics["iterations"] == 0
    assert torch.equal(torch.load(straight.path / "samples-em.pt", weights_only=True),
                       torch.load(only_sample.path / "samples-em.pt", weights_only=True))


def test_alpha_sweep_writes_a_table_and_a_plot(tmp_path: Path) -> None:
    run, metrics = run_pipeline(_tiny({"plugin": "igo-alpha-sweep", "alphas": [1.0, 0.5],
                                       "iterations": 2, "classifier_epochs": 1}),
                                out=tmp_path / "sweep", quiet=True)
    rows = list(csv.DictReader((run.path / "alpha_sweep.csv").open()))
    assert [float(r["alpha"]) for r in rows] == [1.0, 0.5]
    assert all(math.isfinite(float(r["fd_em"])) for r in rows)
    assert (run.path / "alpha_sweep.png").is_file()
    assert (run.path / "alpha-0.5" / "samples-em.png").is_file()
    assert 0.0 < metrics["classifier_accuracy"] <= 1.0


def test_alpha_sweep_starts_every_alpha_from_the_same_weights(tmp_path: Path) -> None:
    run, _ = run_pipeline(_tiny({"plugin": "igo-alpha-sweep", "alphas": [1.0, 0.5],
                                 "iterations": 0, "classifier_epochs": 1}),
                          out=tmp_path / "sweep", quiet=True)
    a, b = (torch.load(run.path / f"alpha-{x}" / "samples-em.pt", weights_only=True)
            for x in ("1", "0.5"))
    assert torch.equal(a, b)  # untrained: same initial weights and prior draws


def test_shipped_image_pipelines_validate() -> None:
    for name in ("igo-mnist.yaml", "igo-alpha-sweep.yaml"):
        pipe = pipeline.load(REPO / "pipelines" / name)
        assert pipe.job.spec.name in ("image-score", "igo-alpha-sweep")
