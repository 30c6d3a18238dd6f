"""Score-based image generation with IGO (paper 4.1): train, sample, score.

Trains the U-Net score model on real digits corrupted by a forward SDE (default: Arnold's cat map
as drift, scaled Gaussian diffusion) with the alpha-weighted IGO loss when a ``head`` is given,
then samples with the probability-flow ODE (torchdiffeq dopri5) and the reverse-SDE
Euler-Maruyama sampler, writes PNG grids, and scores the samples by the Frechet distance in the
features of a digit classifier that pcdkit trains on the same data (FD-MNIST, see
:mod:`pcdkit.generation.classifier`). ``iterations: 0`` with ``init_checkpoint`` only samples.

Resumable (``--resume RUN_DIR``: model, EMA, optimizer, heads, random state and step), periodic
atomic checkpoints, ``metrics.csv`` and ``training.png``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcdkit.backbones.score_unet import ScoreUNet
from pcdkit.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from pcdkit.core.context import JobContext
from pcdkit.core.rundir import read_history
from pcdkit.core.trainer import Trainer, TrainSettings
from pcdkit.corruptions.sde import EulerMaruyama
from pcdkit.datasets.mnist import ImageSet
from pcdkit.errors import PcdkitError
from pcdkit.generation import classifier as clf
from pcdkit.generation.loss import igo_score_loss
from pcdkit.generation.samplers import predictor_corrector, probability_flow, reverse_sde
from pcdkit.heads.base import IGOHeadSet
from pcdkit.metrics.frechet import frechet_distance, frechet_interval
from pcdkit.render import pyplot, save_image_grid


@dataclass(frozen=True)
class ImageScoreSettings:
    """image-score's settings (documented with the plugin's parameters)."""

    iterations: int
    batch_size: int
    lr: float
    alpha: float
    ema_decay: float
    grad_clip: float
    log_every: int
    checkpoint_every: int
    samples: int
    sampler: str
    em_steps: int
    ode_rtol: float
    ode_atol: float
    eps: float
    fd: bool
    classifier_epochs: int
    init_checkpoint: Path | None
    fd_bootstrap: int = 200
    cpu_minutes: float = 0.0
    pc_snr: float = 0.16
    pc_corrector_steps: int = 1

    def training(self) -> TrainSettings:
        """The loop's share of the settings."""
        return TrainSettings(iterations=self.iterations, lr=self.lr, log_every=self.log_every,
                             checkpoint_every=self.checkpoint_every, grad_clip=self.grad_clip,
                             ema_decay=self.ema_decay, cpu_minutes=self.cpu_minutes)


class ImageScoreJob:
    """Train an image score model (optionally with IGO heads), sample, and score the samples."""

    def __init__(self, **settings: Any) -> None:
        self.s = ImageScoreSettings(**settings)

    # -- components ------------------------------------------------------------------------
    @staticmethod
    def dataset(ctx: JobContext) -> ImageSet:
        """The pipeline's 28 x 28 training images."""
        data = ctx.build("dataset")  # an ImageData, checked by ctx.build
        if tuple(data.images.shape[1:]) != (1, 28, 28):
            raise PcdkitError(f"dataset: image-score needs 1 x 28 x 28 images (e.g. mnist), "
                              f"got {tuple(data.images.shape[1:])}")
        return data

    @staticmethod
    def model_parts(ctx: JobContext) -> tuple[ScoreUNet, IGOHeadSet | None, EulerMaruyama]:
        """Fresh (seeded) backbone, heads and the corruption process of the pipeline."""
        # the slots' contracts (ImageScoreModel, SDEProcess) are checked by ctx.build
        net = ctx.build("backbone")
        process = ctx.build("corruption")
        return net, ctx.build("head", backbone=net), process

    # -- training --------------------------------------------------------------------------
    def fit(self, ctx: JobContext, alpha: float, data: ImageSet, net: ScoreUNet,
            heads: IGOHeadSet | None, process: EulerMaruyama) -> dict[str, Any]:
        """Train in ``ctx.run`` (checkpoints/, metrics.csv); returns figures and the weights
        to sample with (the average when ``ema_decay`` > 0)."""
        s, device, folder = self.s, ctx.device, ctx.run.path
        if s.init_checkpoint is not None:
            self._load_weights(net, heads, s.init_checkpoint)
        net.to(device).train()
        modules: dict[str, torch.nn.Module] = {"model": net}
        if heads is not None:
            modules["heads"] = heads.to(device).train()
        params = [p for m in modules.values() for p in m.parameters()]
        trainer = Trainer(ctx, s.training(), modules, torch.optim.Adam(params, lr=s.lr),
                          generator=ctx.generator_for("training"), distributed=False)
        images = data.images

        def loss(model: torch.nn.Module, step: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = torch.randint(len(images), (s.batch_size,), generator=trainer.generator)
            return igo_score_loss(model, heads, process, images[idx].to(device), alpha,
                                  trainer.generator)

        def on_checkpoint(done: int) -> None:
            ckpts = folder / "checkpoints"
            which = "ema" if trainer.ema is not None else "raw"
            save_checkpoint(Checkpoint("score-unet", trainer.averaged.state_dict(),
                                       net.config(), {"step": done, "weights": which}),
                            ckpts / "model.pt", overwrite=True)
            if heads is not None:
                save_checkpoint(Checkpoint("igo-unet-heads", heads.state_dict(),
                                           {"taus": heads.taus}, {"step": done}),
                                ckpts / "heads.pt", overwrite=True)

        last = trainer.fit(loss, on_checkpoint=on_checkpoint, plot=_plot_loss,
                           desc=f"train alpha={alpha:g}")
        model = trainer.averaged.eval()
        out: dict[str, Any] = {"iterations": s.iterations, "alpha": alpha,
                               "final_loss": last.get("loss", float("nan")),
                               "steps": trainer.step,
                               "cpu_minutes_used": round(trainer.cpu_seconds / 60, 3)}
        if heads is not None:
            out["igo_parameters"] = heads.overhead(net)
        return out | {"ema": model}

    @staticmethod
    def _load_weights(net: ScoreUNet, heads: IGOHeadSet | None, path: Path) -> None:
        ckpt = load_checkpoint(path)
        if ckpt.model != "score-unet":
            raise PcdkitError(f"{path}: a {ckpt.model!r} checkpoint, expected 'score-unet'")
        if ckpt.config.get("channels") != net.channels:
            raise PcdkitError(f"{path}: trained with channels {ckpt.config.get('channels')}, "
                              f"the pipeline's backbone has {net.channels}")
        net.load_state_dict(ckpt.state_dict)
        heads_path = Path(path).with_name("heads.pt")
        if heads is not None and heads_path.is_file():
            heads.load_state_dict(load_checkpoint(heads_path).state_dict)

    # -- sampling and scoring --------------------------------------------------------------
    @torch.no_grad()
    def sample_and_score(self, ctx: JobContext, model: ScoreUNet, process: EulerMaruyama,
                         real: torch.Tensor | None,
                         feature_net: clf.DigitClassifier | None) -> dict[str, Any]:
        """Samples by the chosen sampler(s); PNG grids, .pt samples and FD per sampler against
        the ``real`` features."""
        s, device, folder = self.s, ctx.device, ctx.run.path

        def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return model(x, t, process.kernel_std(t))

        shape = (s.samples, 1, 28, 28)
        out: dict[str, Any] = {}
        samplers = {"both": ("ode", "em"), "all": ("ode", "em", "pc")}.get(s.sampler,
                                                                          (s.sampler,))
        for name in samplers:
            gen = ctx.generator_for(f"sampler-{name}")
            start = time.perf_counter()
            if name == "ode":
                x, nfe = probability_flow(score, process, shape, generator=gen, device=device,
                                          eps=s.eps, rtol=s.ode_rtol, atol=s.ode_atol)
                out["ode_nfe"] = nfe
            elif name == "pc":
                x = predictor_corrector(score, process, shape, generator=gen, device=device,
                                        steps=s.em_steps, eps=s.eps, snr=s.pc_snr,
                                        corrector_steps=s.pc_corrector_steps)
            else:
                x = reverse_sde(score, process, shape, generator=gen, device=device,
                                steps=s.em_steps, eps=s.eps)
            out[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
            x = x.clamp(0, 1).cpu()  # pixels live in [0, 1]; the FD sees what a person sees
            torch.save(x, folder / f"samples-{name}.pt")
            if pyplot() is not None:  # the PNG is a view; the samples are saved above
                save_image_grid(x[:64], folder / f"samples-{name}.png")
            if feature_net is not None and real is not None:
                feats = clf.features(feature_net, x, device)
                if s.fd_bootstrap > 0:  # the samples' finite-size uncertainty, not only a value
                    fd, lo, hi = frechet_interval(feats, real, resamples=s.fd_bootstrap,
                                                  generator=ctx.generator_for(f"fd-ci-{name}"))
                    out[f"fd_{name}"], out[f"fd_{name}_ci95"] = fd, [lo, hi]
                else:
                    out[f"fd_{name}"] = frechet_distance(feats, real)
        return out

    def feature_network(self, ctx: JobContext, data: ImageSet
                        ) -> tuple[clf.DigitClassifier | None, torch.Tensor | None, float]:
        """The FD feature classifier trained on the dataset, the real images' features and its
        held-out accuracy (None, None, nan when fd is off)."""
        if not self.s.fd:
            return None, None, float("nan")
        gen = ctx.generator_for("fd-classifier")
        model, acc = clf.train_classifier(data, epochs=self.s.classifier_epochs,
                                          generator=gen, device=ctx.device)
        save_checkpoint(Checkpoint("digit-classifier", model.state_dict(),
                                   extra={"heldout_accuracy": acc}),
                        ctx.run.artifact("checkpoints/classifier.pt"), overwrite=True)
        ctx.run.log.info("FD feature classifier: held-out accuracy %.4f", acc)
        return model, clf.features(model, data.images, ctx.device), acc

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train, sample, score; returns losses, FD per sampler and timings."""
        data = self.dataset(ctx)
        net, heads, process = self.model_parts(ctx)
        alpha = self.s.alpha if heads is not None else 1.0
        fitted = self.fit(ctx, alpha, data, net, heads, process)
        model = fitted.pop("ema")
        feature_net, real, acc = self.feature_network(ctx, data)
        fitted |= self.sample_and_score(ctx, model, process, real, feature_net)
        if feature_net is not None:
            fitted["classifier_accuracy"] = acc
        return fitted


def _plot_loss(folder: Path) -> None:
    """``training.png``: the loss terms against step."""
    plt = pyplot()
    if plt is None:
        return
    rows = read_history(folder)
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for col in (c for c in rows[0] if c.startswith("loss")):
        ax.plot(steps, [float(r[col]) for r in rows], label=col)
    ax.set(xlabel="step", ylabel="DSM loss", yscale="log", title="training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "training.png", dpi=100)
    plt.close(fig)
