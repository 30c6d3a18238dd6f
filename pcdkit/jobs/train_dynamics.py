"""Train a latent dynamics model on panel data; interpolation and extrapolation MSE.

Protocol (IGO 4.2): the first ``n_obs`` frames (default: half) are the observed window.
- Extrapolation: the encoder sees every frame of the window; the ODE is integrated from the first
  time through the window into the future and the frames after the window are scored. (The
  ME-NODE reference code restarts the ODE from the encoded z0 at the first unobserved time, which
  discards the elapsed dynamics; pcdkit does not.)
- Interpolation: the encoder sees the even-indexed frames of the window; the odd-indexed frames
  of the window, never seen, are scored.
- Reconstruction (reported as ``recon_mse``): the encoder sees the window and the window itself
  is scored.
- Baselines (``baselines`` in ``metrics.json``): last frame, mean frame and linear
  interpolation / least-squares extrapolation on the same test subjects and masks
  (:mod:`pcdkit.dynamics.baselines`).
- Split: the last ``test_fraction`` of subjects; training drops subjects made from the same
  source item (MNIST image) as a test subject, and a normaliser is refitted on training alone.
- Training: the encoder sees each window frame with probability ``obs_keep`` (the first always),
  the likelihood covers all frames of the training subjects, so one model serves both tasks.
  ``codec_warmup`` steps first train the model's frame codec alone (``codec_loss``: frame
  encoder and decoder as an autoencoder); KL annealing starts after them. The next
  ``latent_warmup`` steps train the encoder and the dynamics alone to follow the codes of the
  frames in latent space (``latent_loss``), and the ``codec_hold`` ELBO steps after them keep
  the codec fixed too (``codec_parameters``): trained jointly at once, the decoder unlearns the
  warm-up within a few dozen steps (it is fitted to the untrained dynamics' latents and falls
  back to the mean frame). In every warm-up the ``mse`` column is that warm-up's loss.
MSE = mean over subjects x time x dims (pixels in [0, 1]; standardised units for Hopper).

Resumable (``--resume``), atomic checkpoints, ``metrics.csv``, ``training.png`` and
``predictions.png`` (true vs predicted frames, per-dimension trajectories for vectors).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcdkit.checkpoints import Checkpoint, save_checkpoint
from pcdkit.core.context import JobContext
from pcdkit.core.rundir import read_history
from pcdkit.core.trainer import Trainer, TrainSettings
from pcdkit.datasets.trajectories import Trajectories
from pcdkit.dynamics.baselines import baseline_mse, regression_mse
from pcdkit.dynamics.me_node import MixedEffectNODE
from pcdkit.errors import PcdkitError
from pcdkit.ode import ODEFailure
from pcdkit.render import pyplot

FIELDS = ("step", "loss", "loglik", "loglik_tau", "mse", "kl_coef", "lr", "grad_norm", "seconds",
          "interp_mse", "extrap_mse", "recon_mse")


def window_masks(times: torch.Tensor, n_obs: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per task: (frames the encoder sees, frames scored), as (T,) booleans. ``recon`` scores
    the observed frames themselves (reconstruction, the looser "interpolation" of some papers)."""
    idx = torch.arange(len(times))
    window = idx < n_obs
    return {"interp": (window & (idx % 2 == 0), window & (idx % 2 == 1)),
            "extrap": (window, ~window), "recon": (window, window)}


def _method(model: Any, plugin: str, method: str, setting: str, used: int) -> Any:
    """``model.method`` when ``job.setting`` is in use (``used`` > 0), else None; a clear error
    if the plugin lacks it."""
    if not used:
        return None
    found = getattr(model, method, None)
    if found is None:
        raise PcdkitError(f"job.{setting}: the model plugin {plugin!r} has no frame codec "
                          f"(no {method} method)")
    return found


@torch.no_grad()
def evaluate(model: MixedEffectNODE, data: Trajectories, n_obs: int, device: torch.device,
             batch_size: int = 100) -> dict[str, float]:
    """Interpolation and extrapolation MSE on ``data``."""
    model.eval()
    out = {}
    times = data.times.to(device)
    for task, (seen, scored) in window_masks(data.times, n_obs).items():
        if not scored.any():
            continue
        total, count = 0.0, 0
        for i in range(0, len(data), batch_size):
            x = data.values[i:i + batch_size].to(device)
            mask = seen.to(device).expand(len(x), -1).float()
            pred = model.predict(x, mask, times)
            err = (pred[:, scored] - x[:, scored]) ** 2
            total, count = total + float(err.sum()), count + err.numel()
        out[f"{task}_mse"] = total / count
    model.train()
    return out


@dataclass(frozen=True)
class DynamicsSettings:
    """train-dynamics' settings (documented with the plugin's parameters)."""

    iterations: int
    batch_size: int
    lr: float
    lr_decay: float
    grad_clip: float
    kl_anneal: int
    n_obs: int | None
    obs_keep: float
    test_fraction: float
    eval_every: int
    log_every: int
    checkpoint_every: int
    figures: int
    optimizer: str = "adamax"
    warmup: int = 0
    time_unit: str = "sequence"
    cpu_minutes: float = 0.0
    codec_warmup: int = 0
    codec_hold: int = 0
    latent_warmup: int = 0

    def training(self, per_epoch: int) -> TrainSettings:
        """The loop's share: warm-up, then ``lr_decay`` once per epoch of ``per_epoch`` steps
        (the reference's ExponentialLR)."""
        return TrainSettings(iterations=self.iterations, lr=self.lr, log_every=self.log_every,
                             checkpoint_every=self.checkpoint_every,
                             eval_every=self.eval_every, warmup=self.warmup,
                             lr_schedule="exponential", lr_decay=self.lr_decay,
                             decay_every=per_epoch, grad_clip=self.grad_clip,
                             cpu_minutes=self.cpu_minutes)


class TrainDynamicsJob:
    """ME-NODE / NODE / ME-NODE+IGO training with interpolation / extrapolation evaluation."""

    def __init__(self, **settings: Any) -> None:
        self.s = DynamicsSettings(**settings)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train, evaluate at intervals and at the end; returns the test MSEs."""
        s, device = self.s, ctx.device
        data: Trajectories = ctx.build("dataset")  # checked against PanelData by build
        train, test = data.split(s.test_fraction)
        if s.time_unit == "frame":  # one ODE time unit per frame: longer latent paths
            span = len(data.times) - 1
            data, train, test = (dataclasses.replace(d, times=d.times * span)
                                 for d in (data, train, test))
        n_obs = s.n_obs if s.n_obs is not None else len(data.times) // 2
        if not 1 <= n_obs < len(data.times):
            raise PcdkitError(f"job.n_obs: need 1 <= n_obs < {len(data.times)} frames, "
                              f"got {n_obs}")
        model: MixedEffectNODE = ctx.build("model", frame_shape=data.frame_shape)
        model.to(device).train()
        optim = torch.optim.Adam if s.optimizer == "adam" else torch.optim.Adamax
        per_epoch = max(1, len(train) // s.batch_size)
        trainer = Trainer(ctx, s.training(per_epoch), {"model": model},
                          optim(model.parameters(), lr=s.lr),
                          generator=ctx.generator_for("training"), fields=FIELDS,
                          distributed=False)
        gen = trainer.generator
        name = ctx.section("model").spec.name
        codec_loss = _method(model, name, "codec_loss", "codec_warmup", s.codec_warmup)
        latent_loss = _method(model, name, "latent_loss", "latent_warmup", s.latent_warmup)
        held = s.latent_warmup + s.codec_hold  # steps after the codec warm-up with it fixed
        setting = "codec_hold" if s.codec_hold else "latent_warmup"
        codec = list(_method(model, name, "codec_parameters", setting, held)()) if held else []
        times = data.times.to(device)
        seen_window = torch.arange(len(times), device=device) < n_obs
        state_dir = ctx.run.path / "checkpoints"

        def loss(net: torch.nn.Module, step: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = torch.randint(len(train), (s.batch_size,), generator=gen)
            x = train.values[idx].to(device)
            keep = torch.rand(x.shape[:2], generator=gen).to(device) < s.obs_keep
            keep[:, 0] = True
            mask = (keep & seen_window).float()
            if step < s.codec_warmup:  # the frame codec alone first, as an autoencoder
                value = codec_loss(x)
                return value, {"mse": value.item(), "kl_coef": 0.0}
            done = step - s.codec_warmup
            for param in codec:  # no gradient, so the optimiser leaves them (and their moments)
                param.requires_grad_(done >= held)
            if done < s.latent_warmup:  # then encoder and dynamics follow the codes
                value = latent_loss(x, mask, times)
                return value, {"mse": value.item(), "kl_coef": 0.0}
            done -= s.latent_warmup  # KL annealing starts with the ELBO
            kl_coef = min(1.0, (done + 1) / s.kl_anneal) if s.kl_anneal > 0 else 1.0
            try:
                value, parts = net.loss(x, mask, times, kl_coef, len(train), gen)
            except ODEFailure as exc:
                raise PcdkitError(f"step {step + 1}: {exc}. The last checkpoint is in "
                                  f"{state_dir}; continue with --resume {ctx.run.path} and a "
                                  "lower job.lr") from None
            return value, {**parts, "kl_coef": kl_coef}

        def on_checkpoint(done: int) -> None:
            config = {"model": ctx.section("model").as_dict(),
                      "frame_shape": list(model.frame_shape)}
            save_checkpoint(Checkpoint("dynamics", model.state_dict(), config, {"step": done}),
                            state_dir / "model.pt", overwrite=True)

        last = trainer.fit(loss, evaluate=lambda done: evaluate(model, test, n_obs, device),
                           on_checkpoint=on_checkpoint, plot=_plot_training)
        last_eval = {k: v for k, v in last.items() if k.endswith("_mse") and k != "mse"}
        if not last_eval:
            last_eval = evaluate(model, test, n_obs, device)
        plot_predictions(model, test, n_obs, device, ctx.run.path / "predictions.png",
                         s.figures)
        n_params = sum(p.numel() for p in model.parameters())
        masks = window_masks(test.times, n_obs)
        baselines = baseline_mse(test.values, test.times, masks) | regression_mse(
            train.values, test.values, masks)
        ctx.run.log.info("baselines on the test subjects: %s", baselines)
        return {**last_eval, "baselines": baselines, "iterations": s.iterations,
                "steps": trainer.step, "cpu_minutes_used": round(trainer.cpu_seconds / 60, 3),
                "n_obs": n_obs,
                "frames": len(data.times), "train_subjects": len(train),
                "dropped_for_leakage": len(data) - len(train) - len(test),
                "test_subjects": len(test), "parameters": n_params,
                "checkpoint": str(state_dir / "model.pt")}


@torch.no_grad()
def plot_predictions(model: MixedEffectNODE, data: Trajectories, n_obs: int,
                     device: torch.device, path: Path, subjects: int = 4) -> None:
    """True vs extrapolated frames (images) or per-dimension trajectories (vectors)."""
    plt = pyplot()
    if plt is None or subjects == 0:
        return
    n = min(subjects, len(data))
    x = data.values[:n].to(device)
    seen, _ = window_masks(data.times, n_obs)["extrap"]
    pred = model.predict(x, seen.to(device).expand(n, -1).float(), data.times.to(device)).cpu()
    x, pred, t = x.cpu().numpy(), pred.numpy(), data.times.numpy()
    if model.images:
        frames = len(t)
        fig, axes = plt.subplots(2 * n, frames, figsize=(frames * 0.7, 2 * n * 0.75))
        for i in range(n):
            for k in range(frames):
                for r, src in ((0, x), (1, pred)):
                    ax = axes[2 * i + r, k]
                    ax.imshow(src[i, k, 0], cmap="gray", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if k == n_obs:  # the paper's Fig. 4 line: extrapolation starts here
                        ax.spines["left"].set(color="red", linewidth=3)
            axes[2 * i, 0].set_ylabel("true", fontsize=7)
            axes[2 * i + 1, 0].set_ylabel("pred", fontsize=7)
    else:
        dims = x.shape[-1]
        cols = math.ceil(dims / 2)
        fig, axes = plt.subplots(2, cols, figsize=(cols * 2.2, 4.4), squeeze=False)
        for d in range(dims):
            ax = axes[d // cols, d % cols]
            for i in range(n):
                line, = ax.plot(t, x[i, :, d], lw=1)
                ax.plot(t, pred[i, :, d], "--", lw=1, color=line.get_color())
            ax.axvline((t[n_obs - 1] + t[n_obs]) / 2, color="k", lw=0.8)
            ax.set_title(f"dim {d}", fontsize=8)
            ax.tick_params(labelsize=6)
        fig.suptitle("true (solid) vs predicted (dashed); observed left of the line",
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_training(path: Path) -> None:
    plt = pyplot()
    rows = read_history(path)
    if plt is None or not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    pts = [(int(r["step"]), float(r["mse"])) for r in rows if r.get("mse")]
    if pts:
        axes[0].plot(*zip(*pts, strict=True))
    axes[0].set(xlabel="step", ylabel="training MSE", yscale="log", title="training")
    for key in ("interp_mse", "extrap_mse"):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if pts:
            axes[1].plot(*zip(*pts, strict=True), marker="o", label=key)
    axes[1].set(xlabel="step", ylabel="test MSE", yscale="log", title="test")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path / "training.png", dpi=100)
    plt.close(fig)
