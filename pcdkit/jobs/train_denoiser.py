"""Training job of the score-denoise backbone: supervised score matching as in the reference.

With a ``head`` section (IGO's E_tau / D_tau) and a ``corruption`` that returns intermediate
iterates, it trains alpha * L(x_t) + (1 - alpha) * sum_tau L(x_tau) and logs the weight diversity
between E_T / E_tau and D_T / D_tau (cosine similarity, Euclidean distance) over training.

Resumable (``pcdkit run P.yaml --resume RUN_DIR`` continues model, optimizer, random state and
step exactly), DistributedDataParallel under torchrun (gloo on CPU, NCCL on CUDA; every rank
draws its own patches), periodic atomic checkpoints, validation Chamfer distance at intervals,
``metrics.csv``, TensorBoard scalars when tensorboard is installed, and a PNG of the curves.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from pcdkit.atomic import atomic_write_text
from pcdkit.backbones.score_denoise.backbone import load_network
from pcdkit.backbones.score_denoise.denoise import denoise_cloud
from pcdkit.backbones.score_denoise.loss import make_training_patches
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import Checkpoint, save_checkpoint
from pcdkit.corruptions.gaussian import GaussianNoise
from pcdkit.errors import PcdkitError
from pcdkit.heads.igo_score_denoise import IGOScoreDenoiseNet
from pcdkit.jobs.base import JobContext
from pcdkit.jobs.state import load_state, restoring, save_state
from pcdkit.metrics.base import P2M, Chamfer
from pcdkit.metrics.protocol import evaluate_shape
from pcdkit.render import pyplot
from pcdkit.rundir import read_history

FIELDS = ("step", "loss", "lr", "grad_norm", "seconds", "val_cd", "val_p2m")
EMA_FIELDS = ("val_cd_raw", "val_p2m_raw")  # the raw weights beside their average
NOISY_VAL = "validation_noisy.json"  # the validation figures of the noisy input itself


class TrainDenoiserJob:
    """Train (or fine-tune) the score-denoise network."""

    def __init__(self, iterations: int, batch_size: int, lr: float, patch_size: int,
                 patch_ratio: float, noise_min: float, noise_max: float, scale_range: float,
                 rotate: bool, num_points: int, frame_knn: int, clean_neighbours: int,
                 sigma: float, log_every: int, checkpoint_every: int, val_every: int,
                 val_noises: list[float], val_shapes: int, init_checkpoint: Path | None,
                 allow_pickle: bool, backend: str, alpha: float,
                 zero_init_output: bool, freeze_batchnorm: bool,
                 output_lr: float | None = None, bn_recalibration: int = 0,
                 ema_decay: float = 0.0, warmup: int = 0, lr_schedule: str = "constant",
                 lr_min: float = 0.0, grad_clip: float = 0.0,
                 compiled_training: bool = False) -> None:
        self.s = dict(locals())
        del self.s["self"]
        if freeze_batchnorm and bn_recalibration:
            raise PcdkitError("job.bn_recalibration re-estimates the BatchNorm statistics that "
                              "job.freeze_batchnorm keeps fixed: set one of them")

    # -- state -----------------------------------------------------------------------------
    def _state_path(self, ctx: JobContext) -> Path:
        return ctx.run.path / "checkpoints" / "last.pt"

    def _save(self, ctx: JobContext, net: torch.nn.Module, opt: torch.optim.Optimizer,
              step: int, gen: torch.Generator, extra: dict[str, Any],
              export: ScoreDenoiseNet | None = None,
              ema: torch.optim.swa_utils.AveragedModel | None = None) -> None:
        states = [gen.get_state()]
        if ctx.world_size > 1:
            states = [None] * ctx.world_size
            dist.all_gather_object(states, gen.get_state())
        if not ctx.is_primary:
            return
        backbone = _backbone(ema.module if ema is not None else net)
        if export is not None:  # same weights, BatchNorm statistics re-estimated
            backbone = export
        ckpt = Checkpoint("score-denoise", backbone.state_dict(), config=self._config(),
                          extra={"step": step, **extra})
        folder = ctx.run.path / "checkpoints"
        save_checkpoint(ckpt, folder / "model.pt", overwrite=True)
        if isinstance(net, IGOScoreDenoiseNet):
            save_checkpoint(Checkpoint("igo-score-denoise-heads", net.heads.state_dict(),
                                       config={"taus": net.heads.taus},
                                       extra={"step": step}),
                            folder / "heads.pt", overwrite=True)
        training = {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "rng": states, "world_size": ctx.world_size, **extra}
        if ema is not None:
            training["ema"] = ema.state_dict()
        save_state(self._state_path(ctx), training)

    def _config(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.s.items()}

    # -- run -------------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train; returns final loss, validation Chamfer distance and the checkpoint path."""
        s = self.s
        device = ctx.device
        clouds = [shape.points for ds in ctx.build("datasets") for shape in ds]
        if not clouds:
            raise PcdkitError("datasets: no training shapes")
        val = ctx.build("val_dataset")
        val_items = [val[i] for i in range(min(s["val_shapes"], len(val)))] if val else []
        if s["init_checkpoint"] is not None:
            net = load_network(s["init_checkpoint"], s["allow_pickle"], s["backend"],
                               compiled_training=s["compiled_training"])
        else:
            net = ScoreDenoiseNet(knn_backend=s["backend"],
                                  compiled_training=s["compiled_training"])
            if s["zero_init_output"]:  # start from the zero score: no early loss explosion
                torch.nn.init.zeros_(net.score_net.conv_out.weight)
                torch.nn.init.zeros_(net.score_net.conv_out.bias)
        corruption = ctx.build("corruption")
        heads = ctx.build("head", backbone=net)
        if heads is not None and corruption is None:
            raise PcdkitError("head: IGO training needs a `corruption` section that returns "
                              "intermediate iterates (e.g. swap-clean or pointcloud-em)")
        taus = heads.taus if heads is not None else []
        if taus:  # a process that ignores `taus` would fail deep inside the first step
            probe = corruption(torch.randn(1, 64, 3, generator=torch.Generator().manual_seed(0)),
                               generator=torch.Generator().manual_seed(0), taus=taus)
            missing = [t for t in taus if t not in probe.intermediates]
            if missing:
                raise PcdkitError(
                    f"{ctx.section('corruption').spec.origin} returns no intermediate iterate "
                    f"at tau={missing}; IGO training needs a process that does (e.g. gaussian, "
                    "pointcloud-em, swap-clean)")
        trained: torch.nn.Module = net if heads is None else IGOScoreDenoiseNet(
            net, heads, s["alpha"])
        if heads is not None and ctx.is_primary:
            ctx.run.log.info("IGO parameter overhead: %s", heads.overhead(net))
        trained.to(device)
        self._train_mode(trained)
        net = trained if heads is None else trained.backbone
        opt = torch.optim.Adam(self._param_groups(trained, net), lr=s["lr"])
        ema = None
        if s["ema_decay"] > 0:  # buffers too: the average carries its own BatchNorm statistics
            ema = torch.optim.swa_utils.AveragedModel(
                trained, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(
                    s["ema_decay"]), use_buffers=True)
            ema.module.eval()
        gen = torch.Generator().manual_seed(ctx.pipeline.seed * 1000 + ctx.rank)
        step, best = 0, math.inf
        if ctx.resume:
            step, best = self._restore(ctx, trained, opt, gen, ema)
        model = trained
        if ctx.world_size > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                trained, device_ids=[device.index] if device.type == "cuda" else None)
        writer = _tensorboard(ctx)
        loss_sum, loss_n, last_val = 0.0, 0, float("nan")
        start = time.perf_counter()
        bar = ctx.progress(range(step, s["iterations"]), "train", total=s["iterations"] - step)
        if val_items and ctx.is_primary and not ctx.resume:
            noisy_val = self._validate(None, val_items, device, ctx.pipeline.seed)
            ctx.run.log.info("validation of the noisy input: %s", noisy_val)
            atomic_write_text(ctx.run.path / NOISY_VAL, json.dumps(noisy_val, indent=1))
        for step in bar:
            for group, base in zip(opt.param_groups, self._group_lrs(), strict=True):
                group["lr"] = base * self._lr_factor(step)
            noisy, clean, inter = self._batch(clouds, gen, corruption, taus)
            kw: dict[str, Any] = self._loss_settings()
            if heads is not None:
                kw["intermediates"] = {t: x.to(device) for t, x in inter.items()}
            loss = model(noisy.to(device), clean.to(device), gen, **kw)
            if not math.isfinite(loss.item()):  # before the step: saved weights stay finite
                raise PcdkitError(f"training diverged at step {step + 1} (loss {loss.item()}); "
                                  "lower job.lr and resume from the last checkpoint")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # the norm is measured either way (logged); clipping only when asked
            grad_norm = float(torch.nn.utils.clip_grad_norm_(
                trained.parameters(), s["grad_clip"] if s["grad_clip"] > 0 else math.inf))
            opt.step()
            if ema is not None:
                ema.update_parameters(trained)
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
            done = step + 1
            row: dict[str, Any] = {}
            export = None
            if val_items and (done % s["val_every"] == 0 or done == s["iterations"]):
                evaluated = _backbone(ema.module if ema is not None else trained)
                if s["bn_recalibration"] > 0:
                    export = self._recalibrated(evaluated, clouds, device,
                                                ctx.pipeline.seed * 1000 + 7 + done)
                val = self._validate(export if export is not None else evaluated, val_items,
                                     device, ctx.pipeline.seed)
                last_val = val["cd"]
                row["val_cd"], row["val_p2m"] = val["cd"], val["p2m"]
                if ema is not None:  # what the average buys, measured on the same shapes
                    raw = _backbone(trained)
                    if s["bn_recalibration"] > 0:
                        raw = self._recalibrated(raw, clouds, device,
                                                 ctx.pipeline.seed * 1000 + 7 + done)
                    raw_val = self._validate(raw, val_items, device, ctx.pipeline.seed)
                    row["val_cd_raw"], row["val_p2m_raw"] = raw_val["cd"], raw_val["p2m"]
                    val |= {f"raw_{k}": v for k, v in raw_val.items()}
                if ctx.is_primary:
                    ctx.run.log.info("step %d validation: %s", done, val)
                if last_val < best and ctx.is_primary:
                    best = last_val
                    self._export(ctx, export if export is not None else evaluated, done, val)
            if done % s["log_every"] == 0 or row or done == s["iterations"]:
                row |= {"step": done, "loss": loss_sum / loss_n,
                        "lr": opt.param_groups[0]["lr"], "grad_norm": round(grad_norm, 5),
                        "seconds": round(time.perf_counter() - start, 2)}
                if heads is not None:
                    row |= heads.diversity(net)
                loss_sum, loss_n = 0.0, 0
                if ctx.is_primary:
                    fields = (FIELDS + (EMA_FIELDS if ema is not None else ())
                              + (tuple(heads.diversity(net)) if heads is not None else ()))
                    ctx.run.append_history(row, fields)
                    if "val_cd" in row:  # the curve so far, for a person watching a long run
                        _plot(ctx.run.path)
                    if writer is not None:
                        for k in ("loss", "val_cd"):
                            if k in row:
                                writer.add_scalar(k, row[k], done)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
            if done % s["checkpoint_every"] == 0 or done == s["iterations"]:
                self._save(ctx, trained, opt, done, gen, {"best_val_cd": best}, export, ema)
        metrics: dict[str, Any] = {"iterations": s["iterations"], "world_size": ctx.world_size,
                                   "val_cd": last_val, "best_val_cd": best,
                                   "checkpoint": str(ctx.run.path / "checkpoints" / "model.pt")}
        if heads is not None:
            metrics["igo_parameters"] = heads.overhead(net)
            metrics["igo_diversity"] = heads.diversity(net)
        if ctx.world_size > 1:
            metrics["ddp_weight_max_diff"] = _max_rank_difference(trained)
        if ctx.is_primary:
            _plot(ctx.run.path)
        if writer is not None:
            writer.close()
        return metrics

    def _batch(self, clouds: list[torch.Tensor], gen: torch.Generator, corruption: Any,
               taus: list[float]) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
        s = self.s
        sets = [make_training_patches(
            clouds[int(torch.randint(len(clouds), (1,), generator=gen))], gen, num=1,
            patch_size=s["patch_size"], patch_ratio=s["patch_ratio"], noise_min=s["noise_min"],
            noise_max=s["noise_max"], scale_range=s["scale_range"], rotate=s["rotate"],
            backend=s["backend"], corruption=corruption, taus=taus)
            for _ in range(s["batch_size"])]
        inter = {t: torch.cat([p[2][t] for p in sets]) for t in taus}
        return torch.cat([p[0] for p in sets]), torch.cat([p[1] for p in sets]), inter

    def _loss_settings(self) -> dict[str, Any]:
        return {k: self.s[k] for k in ("num_points", "frame_knn", "clean_neighbours", "sigma")}

    def _group_lrs(self) -> list[float]:
        s = self.s
        return [s["lr"]] if s["output_lr"] is None else [s["lr"], s["output_lr"]]

    def _param_groups(self, trained: torch.nn.Module, net: ScoreDenoiseNet) -> list[dict]:
        # Adam moves every weight by about lr per step whatever its gradient's scale; the output
        # layer maps O(1) BatchNorm'd activations onto scores of size ~0.01, so at lr 1e-3 its
        # steps alone are larger than the targets (measured: loss stays at the zero-score level)
        if self.s["output_lr"] is None:
            return [{"params": list(trained.parameters())}]
        out = {id(p) for p in net.score_net.conv_out.parameters()}
        return [{"params": [p for p in trained.parameters() if id(p) not in out]},
                {"params": list(net.score_net.conv_out.parameters()),
                 "lr": self.s["output_lr"]}]

    def _restore(self, ctx: JobContext, net: torch.nn.Module, opt: torch.optim.Optimizer,
                 gen: torch.Generator, ema: torch.optim.swa_utils.AveragedModel | None
                 ) -> tuple[int, float]:
        path = self._state_path(ctx)
        state = load_state(path, ctx.world_size)
        with restoring(path):
            net.load_state_dict(state["model"])
            if ema is not None and "ema" in state:
                ema.load_state_dict(state["ema"])
            elif ema is not None:  # EMA switched on at this resume: start at today's weights
                ema.module.load_state_dict(net.state_dict())
                ctx.run.log.info("job.ema_decay: no average in the checkpoint, starting one")
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["rng"][ctx.rank])
        for group, lr in zip(opt.param_groups, self._group_lrs(), strict=True):
            group["lr"] = lr  # the pipeline's lr wins, so a resume can change it
        ctx.run.log.info("resumed at step %d", state["step"])
        if ctx.is_primary:
            ctx.run.truncate_history(int(state["step"]))
        return int(state["step"]), float(state.get("best_val_cd", math.inf))

    def _recalibrated(self, net: ScoreDenoiseNet, clouds: list[torch.Tensor],
                      device: torch.device, seed: int) -> ScoreDenoiseNet:
        """A copy of ``net`` whose BatchNorm running statistics are the plain average over
        ``bn_recalibration`` fresh training batches at the current weights.

        With a high learning rate the running averages (momentum 0.1) trail the weights; the
        copy leaves the training state, and so an exact resume, untouched.
        """
        s = self.s
        calibrated = copy.deepcopy(net).train()
        calibrated.score_net.compiled_training = False  # a one-off copy: not worth compiling
        norms = [m for m in calibrated.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for _ in range(s["bn_recalibration"]):
                # the plain Gaussian loss: only the BatchNorm statistics matter here
                noisy, clean, _ = self._batch(clouds, gen, None, [])
                calibrated(noisy.to(device), clean.to(device), gen, **self._loss_settings())
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        return calibrated.eval()

    def _validate(self, net: ScoreDenoiseNet | None, items: list, device: torch.device,
                  seed: int) -> dict[str, float]:
        """Mean CD and P2M (and per noise level) of the validation shapes denoised by the full
        schedule, as users run it; ``net`` None scores the noisy input."""
        was_training = net is not None and net.training
        if net is not None:
            net.eval()
        metrics: dict[str, Any] = {"cd": Chamfer(squared=True, norm=2, direction="both",
                                                 backend="auto")}
        if all(shape.mesh is not None for shape in items):
            metrics["p2m"] = P2M(direction="both", min_triangle_area=0.0, backend="auto")
        out: dict[str, float] = {}
        for std in self.s["val_noises"]:
            noise = GaussianNoise(std)
            rows = []
            for i, shape in enumerate(items):
                gt = shape.points.to(device)
                noisy = noise(gt, generator=torch.Generator().manual_seed(seed * 7919 + i)).x_t
                pred = noisy if net is None else denoise_cloud(net, noisy,
                                                               backend=self.s["backend"])
                rows.append(evaluate_shape(pred, metrics, gt=gt, mesh=shape.mesh))
            for name in metrics:
                out[f"{name}@{std:g}"] = sum(r[name] for r in rows) / len(rows)
        for name in ("cd", "p2m"):
            vals = [v for k, v in out.items() if k.startswith(f"{name}@")]
            out[name] = sum(vals) / len(vals) if vals else float("nan")
        if was_training:
            self._train_mode(net)
        return out

    def _export(self, ctx: JobContext, net: ScoreDenoiseNet, step: int,
                val: dict[str, float]) -> None:
        """``checkpoints/best.pt``: the weights with the best validation CD so far."""
        ckpt = Checkpoint("score-denoise", net.state_dict(), config=self._config(),
                          extra={"step": step, "validation": val})
        save_checkpoint(ckpt, ctx.run.path / "checkpoints" / "best.pt", overwrite=True)
        ctx.run.log.info("step %d: best validation so far %s", step, val)

    def _lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then constant or a
        cosine decay to ``lr_min / lr`` at ``iterations``."""
        s = self.s
        if step < s["warmup"]:
            return (step + 1) / s["warmup"]
        if s["lr_schedule"] == "constant":
            return 1.0
        span = max(1, s["iterations"] - s["warmup"])
        progress = min(1.0, (step - s["warmup"]) / span)
        floor = s["lr_min"] / s["lr"] if s["lr"] > 0 else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def _train_mode(self, net: torch.nn.Module) -> None:
        """Training mode; with ``freeze_batchnorm`` the BatchNorm layers keep their running
        statistics (fine-tuning on other data or noise must not overwrite them)."""
        net.train()
        if self.s["freeze_batchnorm"]:
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()


def _backbone(net: torch.nn.Module) -> ScoreDenoiseNet:
    return net.backbone if isinstance(net, IGOScoreDenoiseNet) else net


def _max_rank_difference(net: torch.nn.Module) -> float:
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return float((hi - lo).abs().max())


def _tensorboard(ctx: JobContext) -> Any:
    if not ctx.is_primary:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(ctx.run.path / "tensorboard"))


def _plot(path: Path) -> None:
    """``training.png``: loss and validation Chamfer distance against step."""
    plt = pyplot()
    if plt is None:
        return
    rows = read_history(path)
    if not rows:
        return
    diversity = [c for c in rows[0] if c.endswith(("_cos", "_dist"))]
    fig, axes = plt.subplots(1, 4 if diversity else 2, figsize=(18 if diversity else 9, 3.5))
    steps = [int(r["step"]) for r in rows]
    axes[0].plot(steps, [float(r["loss"]) for r in rows])
    axes[0].set(xlabel="step", ylabel="loss", title="training loss", yscale="log")
    for col, label in (("val_cd", "exported weights"), ("val_cd_raw", "raw weights (EMA off)")):
        val = [(int(r["step"]), float(r[col])) for r in rows if r.get(col)]
        if val:
            axes[1].plot(*zip(*val, strict=True), marker="o", label=label)
    noisy = path / NOISY_VAL
    if noisy.is_file():
        axes[1].axhline(json.loads(noisy.read_text())["cd"], color="grey", linestyle="--",
                        label="noisy input")
    axes[1].set(xlabel="step", ylabel="CD (mean over val_noises)",
                title="validation Chamfer distance")
    if any(r.get("val_cd_raw") for r in rows) or noisy.is_file():
        axes[1].legend(fontsize=7)
    for ax, suffix, label in ((axes[2:3], "_cos", "cosine similarity"),
                              (axes[3:4], "_dist", "Euclidean distance")):
        for col in (c for c in diversity if c.endswith(suffix)):
            ax[0].plot(steps, [float(r[col]) for r in rows], label=col[: -len(suffix)])
        if len(ax):
            ax[0].set(xlabel="step", ylabel=label, title=f"T vs tau weights: {label}")
            ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "training.png", dpi=100)
    plt.close(fig)
