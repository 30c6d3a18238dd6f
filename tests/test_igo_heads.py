"""IGO heads on the score-denoise backbone: initialisation, overhead, alpha-weighted training."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from pcdkit.backbones.score_denoise.loss import supervised_loss
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import load_checkpoint
from pcdkit.core import pipeline, registry
from pcdkit.core.registry import Registry
from pcdkit.core.runner import run_pipeline
from pcdkit.corruptions.base import Corrupted
from pcdkit.errors import ConfigError, PcdkitError
from pcdkit.heads.igo_score_denoise import IGOScoreDenoiseNet
from pcdkit.plugin import PluginSpec, hookimpl
from tests.test_score_denoise import TINY_TRAIN


def test_heads_replicate_first_and_last_layers_at_half_weight() -> None:
    net = ScoreDenoiseNet()
    heads = registry.get("head", "igo-score-denoise").create({"taus": [0.25, 0.5]},
                                                             backbone=net)
    enc, dec = heads.pair(0.5)
    assert torch.equal(enc.linear.weight, 0.5 * net.feature_net.transforms[0].linear.weight)
    assert torch.equal(dec.weight, 0.5 * net.score_net.conv_out.weight)
    over = heads.overhead(net)
    assert over["heads"] == 2 * ((3 * 24 + 24) + (128 * 3 + 3))
    assert over["igo_total"] < over["separate_networks"] / 2.5
    div = heads.diversity(net)
    assert div["E_tau_0_5_cos"] == pytest.approx(1.0) and div["D_tau_0_25_dist"] > 0


@torch.no_grad()
def test_alpha_weights_the_final_and_intermediate_losses() -> None:
    net = ScoreDenoiseNet()
    heads = registry.get("head", "igo-score-denoise").create({}, backbone=net)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 240, 3)
    noisy = clean + 0.02 * torch.randn(2, 240, 3, generator=g)
    inter = clean + 0.01
    kw = dict(num_points=8, frame_knn=6)

    def loss(alpha: float) -> float:
        model = IGOScoreDenoiseNet(net, heads, alpha)
        return float(model(noisy, clean, torch.Generator().manual_seed(1),
                           intermediates={0.5: inter}, **kw))

    enc, dec = heads.pair(0.5)
    l_final = float(supervised_loss(net, noisy, clean, torch.Generator().manual_seed(1), **kw))
    assert loss(1.0) == pytest.approx(l_final, rel=1e-5)
    g2 = torch.Generator().manual_seed(1)
    supervised_loss(net, noisy, clean, g2, **kw)  # advance the generator like the model does
    l_tau = float(supervised_loss(net, inter, clean, g2, encoder=enc, decoder=dec, **kw))
    assert loss(0.8) == pytest.approx(0.8 * l_final + 0.2 * l_tau, rel=1e-5)


def test_igo_training_runs_from_yaml_and_tracks_diversity(tmp_path: Path) -> None:
    cfg = TINY_TRAIN | {
        "job": TINY_TRAIN["job"] | {"alpha": 0.8, "val_shapes": 0, "lr": 1e-3},
        "head": {"plugin": "igo-score-denoise", "taus": [0.5]},
        "corruption": {"plugin": "swap-clean", "std": 0.02},
    }
    run, metrics = run_pipeline(pipeline.validate(cfg), out=tmp_path / "igo", quiet=True)
    rows = list(csv.DictReader((run.path / "metrics.csv").open()))
    assert "E_tau_0_5_cos" in rows[0] and "D_tau_0_5_dist" in rows[0]
    assert float(rows[-1]["D_tau_0_5_cos"]) < 1.0  # the heads moved away from the copies
    assert metrics["igo_parameters"]["heads"] == 483
    heads = load_checkpoint(run.path / "checkpoints" / "heads.pt")
    assert heads.config["taus"] == [0.5] and len(heads.state_dict) == 4
    assert load_checkpoint(run.path / "checkpoints" / "model.pt").model == "score-denoise"
    # the trained heads denoise through the D_tau pathway
    settings = {"checkpoint": str(run.path / "checkpoints" / "model.pt"),
                "heads": str(run.path / "checkpoints" / "heads.pt"), "tau": 0.5, "steps": 2}
    via_tau = registry.create("backbone", "score-denoise", settings)
    pts = torch.rand(600, 3)
    assert via_tau.denoise(pts).shape == (600, 3)
    plain = registry.create("backbone", "score-denoise", settings | {"heads": None, "tau": None})
    assert not torch.equal(via_tau.denoise(pts), plain.denoise(pts))
    # as a score prior, the field runs through the same pathway (SGILO's intermediate layer)
    assert not torch.allclose(via_tau.score(pts), plain.score(pts))
    assert torch.allclose(via_tau.frozen(pts)(pts), via_tau.score(pts))
    with pytest.raises(PcdkitError, match="not among the heads' taus"):
        registry.create("backbone", "score-denoise", settings | {"tau": 0.25})


def test_exported_heads_are_the_weight_average_paired_with_the_exported_backbone(
        tmp_path: Path) -> None:
    cfg = TINY_TRAIN | {
        "job": TINY_TRAIN["job"] | {"alpha": 0.8, "lr": 1e-2, "ema_decay": 0.5,
                                    "freeze_batchnorm": True},
        "head": {"plugin": "igo-score-denoise", "taus": [0.5]},
        "corruption": {"plugin": "pointcloud-em", "std": 0.02},
    }
    run, _ = run_pipeline(pipeline.validate(cfg), out=tmp_path / "igo", quiet=True)
    ckpts = run.path / "checkpoints"
    state = torch.load(ckpts / "last.pt", weights_only=True)
    raw = {k.removeprefix("heads."): v for k, v in state["model"].items()
           if k.startswith("heads.")}
    heads, best = load_checkpoint(ckpts / "heads.pt"), load_checkpoint(ckpts / "best-heads.pt")
    model = load_checkpoint(ckpts / "model.pt")
    assert heads.extra["step"] == model.extra["step"] == 4 and best.extra["step"] == 4
    key = next(k for k in heads.state_dict if k.startswith("decoders"))
    # lr 1e-2 for 4 steps moves the raw heads; the average (decay 0.5) trails them
    assert not torch.allclose(heads.state_dict[key], raw[key])
    assert torch.equal(best.state_dict[key], heads.state_dict[key])


def test_output_lr_also_paces_the_intermediate_decoders() -> None:
    net = ScoreDenoiseNet()
    heads = registry.get("head", "igo-score-denoise").create({"taus": [0.25, 0.5]},
                                                             backbone=net)
    job = registry.create("job", "train-denoiser", {"output_lr": 1e-5})
    groups = job._param_groups(heads.combine(net, 0.8), net, heads, None)
    slow = {id(p) for p in groups[1]["params"]}
    assert groups[1]["lr"] == 1e-5
    for tau in heads.taus:
        enc, dec = heads.pair(tau)
        assert all(id(p) in slow for p in dec.parameters())
        assert not any(id(p) in slow for p in enc.parameters())
    assert all(id(p) in slow for p in net.output_layer.parameters())


class _FinalOnly:
    """A corruption that returns only the final iterate (no intermediates)."""

    def __call__(self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
                 taus: tuple = ()) -> Corrupted:
        return Corrupted(x0 + 0.01, torch.ones(x0.shape[0]))


class _FinalOnlyPlugin:
    @hookimpl
    def pcdkit_corruptions(self) -> list[PluginSpec]:
        return [PluginSpec("corruption", "final-only", _FinalOnly)]


def test_validate_refuses_heads_whose_corruption_returns_no_intermediates() -> None:
    reg = Registry()
    reg.register_module(_FinalOnlyPlugin(), "final-only", distribution="third-party")
    cfg = {"job": {"plugin": "train-denoiser"}, "datasets": ["procedural"],
           "head": {"plugin": "igo-score-denoise", "taus": [0.5]},
           "corruption": "final-only"}
    with pytest.raises(ConfigError, match=r"corruption: corruption plugin 'final-only' "
                                          r"\(third-party\) returns no intermediate iterate"):
        pipeline.validate(cfg, registry=reg)
    with pytest.raises(ConfigError, match="corruption: IGO training"):
        pipeline.validate({k: v for k, v in cfg.items() if k != "corruption"}, registry=reg)
    pipeline.validate(cfg | {"corruption": "pointcloud-em"}, registry=reg)
