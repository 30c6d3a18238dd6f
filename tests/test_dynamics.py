"""Panel data generators, ME-NODE / NODE / IGO models, the train-dynamics job and its protocol."""

from __future__ import annotations

import csv
import math
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import DATA, REPO, need

from pcdkit.core import pipeline
from pcdkit.core.runner import run_pipeline
from pcdkit.datasets.mnist import mnist
from pcdkit.datasets.rotating_mnist import rotate, rotating_mnist
from pcdkit.dynamics.me_node import MixedEffectNODE, _tau_pairs, node
from pcdkit.errors import PcdkitError
from pcdkit.jobs.train_dynamics import window_masks
from pcdkit.ode import ODEFailure

MNIST = DATA / "dynamics" / "mnist_kelas"


def test_rotation_by_a_quarter_turn_is_exact_on_the_pixel_grid() -> None:
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(rotate(x, torch.full((2,), math.pi / 2)), torch.rot90(x, 1, (2, 3)),
                          atol=1e-5)


def test_rotating_mnist_frames_follow_the_sequence_angles(cache_dir: Path) -> None:
    data = rotating_mnist(need(MNIST), sequences=6, frames=5, seed=1)
    assert tuple(data.values.shape) == (6, 5, 1, 28, 28) and data.frame_shape == (1, 28, 28)
    omega, start = data.info["omega"], data.info["start"]
    assert float(omega.abs().max()) <= math.pi / 4 and float(start.abs().max()) <= math.pi / 2
    digits = mnist(MNIST).images[data.info["index"]]
    assert torch.allclose(rotate(digits, start + 3 * omega).clamp(0, 1), data.values[:, 3])
    assert not torch.allclose(rotate(digits, start + 2 * omega).clamp(0, 1), data.values[:, 3])
    still = rotating_mnist(MNIST, sequences=3, frames=4, max_step=0.0, max_start=0.0)
    assert torch.allclose(still.values[:, 0], still.values[:, 3])


def test_generated_data_is_cached_by_settings(cache_dir: Path) -> None:
    a = rotating_mnist(need(MNIST), sequences=4, frames=3, digits=[3])
    assert len(list(cache_dir.glob("rotating-mnist-*.pt"))) == 1
    b = rotating_mnist(MNIST, sequences=4, frames=3, digits=[3])
    assert torch.equal(a.values, b.values) and set(b.info["labels"].tolist()) == {3}
    rotating_mnist(MNIST, sequences=4, frames=3, digits=[3], seed=1)
    assert len(list(cache_dir.glob("rotating-mnist-*.pt"))) == 2


def test_hopper_initial_states_follow_the_documented_ranges(cache_dir: Path) -> None:
    pytest.importorskip("mujoco")
    from pcdkit.datasets.hopper import hopper

    data = hopper(subjects=200, frames=4, steps_per_frame=5, vel_range=2.0, seed=3)
    assert tuple(data.values.shape) == (200, 4, 14)
    flat = data.values.reshape(-1, 14)
    assert torch.allclose(flat.mean(0), torch.zeros(14), atol=1e-4)
    assert torch.allclose(flat.std(0), torch.ones(14), atol=1e-2)
    raw = data.normalizer.inverse(data.values)
    first = raw[:, 0]
    assert float(first[:, :2].min()) >= 0 and float(first[:, :2].max()) <= 0.5
    assert float(first[:, 2:7].abs().max()) <= 2.0 and float(first[:, 7:].abs().max()) <= 2.0
    assert not torch.allclose(raw[:, 1], raw[:, 0])  # physics moved the state


def test_hopper_refuses_mujoco_4(monkeypatch: pytest.MonkeyPatch) -> None:
    from pcdkit.datasets import hopper as hp

    fake = types.ModuleType("mujoco")
    fake.__version__ = "4.0.0"
    monkeypatch.setitem(sys.modules, "mujoco", fake)
    monkeypatch.setitem(sys.modules, "dm_control", types.ModuleType("dm_control"))
    monkeypatch.setitem(sys.modules, "dm_control.suite", types.ModuleType("dm_control.suite"))
    with pytest.raises(PcdkitError, match="mujoco<4"):
        hp.simulate_hopper(1, 2, 1, 0.5, 2.0, 2.0, 0)


def test_node_has_no_mixed_effect_and_me_node_learns_q_w() -> None:
    plain, me = node((14,), latents=5), MixedEffectNODE((14,), latents=5)
    assert plain.w_posterior() is None and me.w_posterior() is not None
    names = {n for n, _ in me.named_parameters()} - {n for n, _ in plain.named_parameters()}
    assert names == {"w_mu", "w_rho"}


def test_loss_is_finite_and_reaches_every_part() -> None:
    model = MixedEffectNODE((14,), latents=5, units=16, igo=True, n_z0=2, n_w=2)
    x, times = torch.randn(8, 6, 14), torch.linspace(0, 1, 6)
    mask = torch.zeros(8, 6)
    mask[:, :3] = 1
    loss, parts = model.loss(x, mask, times, 0.5, 100, torch.Generator().manual_seed(0))
    assert math.isfinite(loss.item()) and {"loglik", "loglik_tau", "kl_z0", "mse"} <= set(parts)
    loss.backward()
    for name in ("w_mu", "dynamics.e_tau.weight", "encoder.gru.new.0.weight",
                 "decoder.weight", "dynamics.net.0.weight"):
        assert dict(model.named_parameters())[name].grad is not None, name


@pytest.mark.parametrize("igo", [False, True])
def test_adjoint_and_direct_gradients_agree(igo: bool) -> None:
    """The mixed effect w rides in the ODE state, so the adjoint's backward solve sees it."""
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        model = MixedEffectNODE((6,), latents=4, units=8, igo=igo, adjoint=adjoint).double()
        z0 = torch.randn(2, 3, 4, dtype=torch.float64)
        w = torch.full((2, 3, 1), 0.7, dtype=torch.float64, requires_grad=True)
        pred = model.decode_path(z0, w, torch.linspace(0, 1, 5, dtype=torch.float64))
        out = pred.frames.square().sum() + (pred.intermediate.sum() if igo else 0)
        params = [p for p in model.parameters() if p.requires_grad]
        grads.append(torch.autograd.grad(out, [w, *params], allow_unused=True))
    for direct, adj in zip(*grads, strict=True):
        if direct is None:
            assert adj is None or adj.abs().max() == 0
            continue
        assert torch.allclose(direct, adj, rtol=1e-4, atol=1e-6)


def test_igo_intermediate_iterate_starts_as_the_state_at_tau_t() -> None:
    torch.manual_seed(0)
    model = MixedEffectNODE((14,), latents=6, igo=True, tau=0.5)
    times = torch.linspace(0, 1, 9)
    z0 = torch.randn(1, 4, 6)
    w = torch.full((1, 4, 1), 0.7)
    pred = model.decode_path(z0, w, times)
    # E_tau starts at zero: main path = ME-NODE, and z_tau(t_2j) = z(t_j)
    assert torch.allclose(pred.intermediate[:, :, ::2], pred.frames[:, :, :5], atol=1e-4)
    src, dst = _tau_pairs(times, 0.5)
    assert src.tolist() == [0, 2, 4, 6, 8] and dst.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(PcdkitError, match="tau"):
        _tau_pairs(torch.linspace(0, 1, 6), 0.3)


def test_igo_weights_control_has_igo_loss_at_initialisation_without_the_iterate() -> None:
    torch.manual_seed(0)
    igo = MixedEffectNODE((14,), latents=6, units=16, igo=True, tau=0.5, alpha=0.8)
    control = MixedEffectNODE((14,), latents=6, units=16, igo_weights=True, tau=0.5, alpha=0.8)
    assert not control.load_state_dict(igo.state_dict(), strict=False).missing_keys
    plain = MixedEffectNODE((14,), latents=6, units=16)
    plain.load_state_dict(control.state_dict())
    x, times, mask = torch.randn(4, 9, 14), torch.linspace(0, 1, 9), torch.ones(4, 9)
    losses = [m.loss(x, mask, times, 0.5, 100, torch.Generator().manual_seed(1))[0].item()
              for m in (igo, control, plain)]
    # same up to rk4 on two grids (z_tau integrates at rate tau), unlike the unweighted loss
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert abs(losses[2] - losses[1]) > 100 * abs(losses[1] - losses[0])
    with pytest.raises(PcdkitError, match="igo_weights"):
        MixedEffectNODE((14,), igo=True, igo_weights=True)


def test_predictions_never_see_the_frames_they_are_scored_on() -> None:
    model = MixedEffectNODE((1, 28, 28), latents=4, units=8, gru_units=8)
    x, times = torch.rand(3, 8, 1, 28, 28), torch.linspace(0, 1, 8)
    for task in ("interp", "extrap"):
        seen, scored = window_masks(times, 4)[task]
        mask = seen.expand(3, -1).float()
        changed = x.clone()
        changed[:, scored] = torch.rand_like(changed[:, scored])
        a, b = model.predict(x, mask, times), model.predict(changed, mask, times)
        assert torch.equal(a, b), task
    masks = window_masks(times, 4)
    assert masks["interp"][1].tolist() == [False, True, False, True] + [False] * 4
    assert masks["extrap"][1].tolist() == [False] * 4 + [True] * 4


def test_non_finite_dynamics_raise_a_clear_ode_error() -> None:
    model = MixedEffectNODE((14,), latents=4, units=8)
    with torch.no_grad():
        model.dynamics.net[0].weight.fill_(float("nan"))
    with pytest.raises(ODEFailure, match="NaN"):
        model.predict(torch.randn(2, 4, 14), torch.ones(2, 4), torch.linspace(0, 1, 4))


def _tiny(**job: object) -> pipeline.Pipeline:
    return pipeline.validate({
        "name": "tiny-dyn", "seed": 1,
        "job": {"plugin": "train-dynamics", "iterations": 4, "batch_size": 6, "log_every": 1,
                "eval_every": 2, "checkpoint_every": 2, "figures": 2, "kl_anneal": 2, **job},
        "dataset": {"plugin": "rotating-mnist", "root": str(need(MNIST)), "sequences": 20,
                    "frames": 6, "cache": False},
        "model": {"plugin": "me-node", "igo": True, "latents": 4, "units": 8, "gru_units": 8,
                  "rec_dims": 6, "n_z0": 2, "n_w": 1}})


def test_dynamics_job_reports_both_tasks_and_resumes_exactly(tmp_path: Path) -> None:
    straight, metrics = run_pipeline(_tiny(), out=tmp_path / "a", quiet=True)
    assert math.isfinite(metrics["interp_mse"]) and math.isfinite(metrics["extrap_mse"])
    assert metrics["n_obs"] == 3 and metrics["test_subjects"] == 4
    for name in ("predictions.png", "training.png", "checkpoints/model.pt"):
        assert (straight.path / name).is_file()
    rows = list(csv.DictReader((straight.path / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"] and rows[1]["extrap_mse"]
    part, _ = run_pipeline(_tiny(iterations=2), out=tmp_path / "b", quiet=True)
    _, resumed = run_pipeline(_tiny(), resume=part.path, quiet=True)
    a = torch.load(straight.path / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(part.path / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["extrap_mse"] == pytest.approx(metrics["extrap_mse"], rel=1e-6)


def test_codec_warmup_trains_only_the_frame_codec_first(tmp_path: Path) -> None:
    run, _ = run_pipeline(_tiny(iterations=3, codec_warmup=2), out=tmp_path / "w",
                          quiet=True)
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert [r["loglik"] for r in rows[:2]] == ["", ""] and rows[2]["loglik"]  # ELBO from step 3
    assert [float(r["kl_coef"]) for r in rows] == [0.0, 0.0, 0.5]  # annealing starts after it
    model = MixedEffectNODE((1, 28, 28), latents=4, units=8)
    frames = torch.rand(2, 3, 1, 28, 28)
    model.codec_loss(frames).backward()
    touched = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    assert touched == {"frame_encoder", "decoder"}
    with pytest.raises(PcdkitError, match="job.codec_warmup: .*image frames"):
        MixedEffectNODE((14,), latents=4, units=8).codec_loss(torch.randn(2, 4, 14))


def test_latent_warmup_and_codec_hold_keep_the_codec_fixed_then_release_it(
        tmp_path: Path) -> None:
    states = {}
    for steps in (1, 4, 5):  # 1 codec step, 2 latent steps, 1 held ELBO step, 1 free one
        run, _ = run_pipeline(_tiny(iterations=steps, codec_warmup=1, latent_warmup=2,
                                    codec_hold=1), out=tmp_path / str(steps), quiet=True)
        states[steps] = torch.load(run.path / "checkpoints" / "last.pt",
                                   weights_only=True)["model"]
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert [bool(r["loglik"]) for r in rows] == [False, False, False, True, True]
    assert [float(r["kl_coef"]) for r in rows] == [0.0, 0.0, 0.0, 0.5, 1.0]

    def same(a: int, b: int, part: str) -> bool:
        return all(torch.equal(states[a][k], states[b][k]) for k in states[a]
                   if k.startswith(part))

    assert same(1, 4, "decoder.") and same(1, 4, "frame_encoder.")
    assert not same(1, 4, "encoder.") and not same(1, 4, "dynamics.")
    assert not same(4, 5, "decoder.") and not same(4, 5, "frame_encoder.")


def test_the_latent_loss_is_zero_on_a_path_that_follows_the_codes() -> None:
    torch.manual_seed(0)
    model = MixedEffectNODE((1, 28, 28), latents=4, units=8, gru_units=8, rec_dims=6,
                            mixed_effect=False)
    x = torch.rand(3, 1, 1, 28, 28).expand(-1, 4, -1, -1, -1)  # still frames
    times, mask = torch.arange(4.0), torch.ones(3, 4)
    with torch.no_grad():
        for p in model.dynamics.parameters():
            p.zero_()  # dz/dt = 0: the path stays at z0
    codes = model.frame_encoder(x[:, 0])
    model.encode = lambda *_: (codes, torch.ones_like(codes))  # z0 = the frames' code
    assert model.latent_loss(x, mask, times).item() < 1e-10
    model.encode = lambda *_: (codes + 1, torch.ones_like(codes))
    assert model.latent_loss(x, mask, times).item() > 0.1
    with pytest.raises(PcdkitError, match="job.latent_warmup: .*image frames"):
        node((14,), latents=4, units=8).latent_loss(torch.randn(2, 4, 14), mask[:2], times)


def test_hopper_pipeline_runs_with_the_node_baseline(tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("mujoco")
    pipe = pipeline.load(REPO / "pipelines" / "hopper-extrapolation.yaml", overrides=[
        "dataset.subjects=30", "job.iterations=3", "job.batch_size=8", "job.eval_every=3",
        "model=node"])
    run, metrics = run_pipeline(pipe, out=tmp_path / "hop", quiet=True)
    assert metrics["frames"] == 6 and math.isfinite(metrics["extrap_mse"])
    assert (run.path / "predictions.png").is_file()


def test_shipped_dynamics_pipelines_validate() -> None:
    for name in ("hopper-extrapolation.yaml", "rotmnist-extrapolation.yaml"):
        assert pipeline.load(REPO / "pipelines" / name).job.spec.name == "train-dynamics"


def test_baselines_are_exact_where_they_should_be() -> None:
    from pcdkit.dynamics.baselines import baseline_mse, predict, regression_mse
    from pcdkit.jobs.train_dynamics import window_masks

    times = torch.linspace(0, 1, 8)
    slope = torch.randn(5, 1, 3)
    lines = 2.0 + slope * times[None, :, None]  # straight lines: linear is exact
    masks = window_masks(times, 5)  # seen 0, 2, 4; scored 1, 3 (bracketed) and 5-7
    mse = baseline_mse(lines, times, masks)
    assert mse["linear_interp_mse"] < 1e-12 and mse["linear_extrap_mse"] < 1e-12
    # a linear map fitted on other subjects' lines extrapolates lines exactly too
    train = 1.0 + torch.randn(40, 1, 3) * times[None, :, None] + torch.randn(40, 1, 3)
    reg = regression_mse(train, lines, masks, ridge=1e-9)
    assert reg["regression_extrap_mse"] < 1e-6 and reg["regression_interp_mse"] < 1e-6
    assert mse["last_extrap_mse"] > 0 and mse["mean_interp_mse"] > 0
    still = torch.randn(5, 1, 3).expand(-1, 8, -1)  # constant frames: every baseline is exact
    assert max(baseline_mse(still, times, masks).values()) < 1e-12
    seen, scored = masks["extrap"]
    assert predict("last", lines, times, seen, scored, "extrap").shape == (5, 3, 3)


def test_split_drops_training_subjects_that_share_a_test_source_and_refits_the_normaliser(
        ) -> None:
    from pcdkit.datasets.trajectories import Normalizer, Trajectories

    raw = torch.randn(10, 4, 2) * 3 + 1
    norm = Normalizer(raw.reshape(-1, 2).mean(0), raw.reshape(-1, 2).std(0))
    source = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 3, 9])  # subject 3 shares test subject 8's
    data = Trajectories(norm(raw), torch.linspace(0, 1, 4), {}, norm, {"index": source})
    train, test = data.split(0.2)
    assert train.info["index"].tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert test.info["index"].tolist() == [3, 9]
    flat = train.values.reshape(-1, 2)  # standardised on the training subjects alone
    assert torch.allclose(flat.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(train.normalizer.inverse(test.values), raw[8:], atol=1e-5)


def test_hopper_reference_protocol_starts_high_with_one_speed_and_min_max_units(
        cache_dir: Path) -> None:
    pytest.importorskip("dm_control")
    from pcdkit.datasets.hopper import hopper

    data = hopper(subjects=6, frames=3, vel_range=5.0, protocol="reference", speeds=2)
    raw = data.normalizer.inverse(data.values)
    assert data.normalizer.kind == "reference"
    assert (raw[:, 0, 1] >= 1000).all() and (raw[:, 0, 0] == 0).all()  # x = 0, far above
    qvel = raw[:, 0, 7:]
    assert torch.allclose(qvel, qvel[:, :1].expand_as(qvel))  # one speed per trajectory
    assert qvel[:, 0].tolist() == pytest.approx([-5, 5, -5, 5, -5, 5])
    flat = data.values.reshape(-1, 14)
    assert torch.allclose(flat.amin(0), torch.zeros(14), atol=1e-6)  # (x - min) / max
    train, _ = data.split(0.34)
    assert train.normalizer.kind == "reference"  # the refit keeps the reference's units


def test_recipe_options_adam_warmup_frame_time_and_small_z0_std_train(tmp_path: Path) -> None:
    from pcdkit.core import pipeline
    from pcdkit.core.runner import run_pipeline

    cfg = {"device": "cpu", "seed": 1,
           "job": {"plugin": "train-dynamics", "iterations": 3, "batch_size": 4, "eval_every": 3,
                   "checkpoint_every": 3, "figures": 0, "optimizer": "adam", "warmup": 2,
                   "time_unit": "frame"},
           "dataset": {"plugin": "hopper", "subjects": 12, "frames": 4, "cache": False},
           "model": {"plugin": "me-node", "latents": 4, "units": 8, "z0_std_scale": 0.1,
                     "n_z0": 1, "n_w": 1}}
    pytest.importorskip("dm_control")
    run, metrics = run_pipeline(pipeline.validate(cfg), out=tmp_path / "run", quiet=True)
    rows = (run.path / "metrics.csv").read_text().splitlines()
    lrs = [float(r.split(",")[6]) for r in rows[1:]]
    assert math.isfinite(metrics["extrap_mse"]) and lrs[-1] == pytest.approx(1e-3, rel=0.01)


def test_reference_rotating_mnist_cycles_the_step_grid_and_keeps_test_styles_out_of_training(
        cache_dir: Path) -> None:
    data = rotating_mnist(need(MNIST), sequences=40, frames=4, protocol="reference")
    assert set(data.info["labels"].tolist()) == {3} and len(set(data.info["index"].tolist())) == 10
    degrees = data.info["omega"].rad2deg()
    assert torch.allclose(degrees[:4], torch.tensor([-45.0, -15.0, 15.0, 45.0]))
    assert torch.equal(data.info["start"][:4], data.info["start"][:1].expand(4))  # one start
    assert torch.allclose(data.values[:4, 0], data.values[:1, 0].expand(4, -1, -1, -1))
    turned = rotate(data.values[:, 1], -data.info["omega"], "bicubic")  # undo one step
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[8:20, 8:20] = True  # away from corners the rotation cuts off
    err = (turned - data.values[:, 0])[..., inside].abs().mean()
    assert float(err) < 0.05 < float((data.values[:, 1] - data.values[:, 0]).abs().mean())
    train, test = data.split(0.2)
    assert not set(train.info["index"].tolist()) & set(test.info["index"].tolist())
    assert len(train) == 32  # whole styles of four sequences each: nothing dropped


def test_the_posterior_of_z0_ignores_frames_the_encoder_does_not_see() -> None:
    torch.manual_seed(0)
    model = MixedEffectNODE((1, 28, 28), latents=4, units=8, gru_units=8, rec_dims=6)
    x = torch.rand(3, 5, 1, 28, 28)
    mask = torch.tensor([[1, 0, 1, 0, 0], [1, 1, 0, 0, 1], [1, 0, 0, 0, 0]]).float()
    changed = torch.where(mask[..., None, None, None] > 0, x, torch.rand_like(x))
    times = torch.linspace(0, 1, 5)
    mean, std = model.encode(x, mask, times)
    mean2, std2 = model.encode(changed, mask, times)
    assert torch.equal(mean, mean2) and torch.equal(std, std2)
    shifted = x.clone()
    shifted[1, 4] = 1 - shifted[1, 4]  # a seen frame does matter
    assert not torch.allclose(model.encode(shifted, mask, times)[0], mean)
