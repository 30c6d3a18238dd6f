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
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from pcdkit.backbones.score_denoise.loss import make_training_patches
from pcdkit.checkpoints import Checkpoint, save_checkpoint
from pcdkit.core.atomic import atomic_write_text
from pcdkit.core.context import JobContext
from pcdkit.core.pipeline import Pipeline
from pcdkit.core.rundir import jsonable, read_history
from pcdkit.core.trainer import Trainer, TrainSettings
from pcdkit.corruptions.gaussian import GaussianNoise
from pcdkit.errors import PcdkitError
from pcdkit.metrics.base import P2M, Chamfer
from pcdkit.metrics.protocol import evaluate_shape, shape_noise_generator
from pcdkit.render import pyplot

FIELDS = ("step", "loss", "lr", "grad_norm", "seconds", "val_cd", "val_p2m")
EMA_FIELDS = ("val_cd_raw", "val_p2m_raw")  # the raw weights beside their average
NOISY_VAL = "validation_noisy.json"  # the validation figures of the noisy input itself
NEEDS_CORRUPTION = ("IGO training (a `head`) needs a corruption section that returns "
                    "intermediate iterates (e.g. swap-clean or pointcloud-em)")


@dataclass(frozen=True)
class DenoiserSettings:
    """train-denoiser's settings (documented with the plugin's parameters)."""

    iterations: int
    batch_size: int
    lr: float
    patch_size: int
    patch_ratio: float
    noise_min: float
    noise_max: float
    scale_range: float
    rotate: bool
    log_every: int
    checkpoint_every: int
    val_every: int
    val_noises: tuple[float, ...]
    val_shapes: int
    backend: str
    alpha: float
    freeze_batchnorm: bool
    output_lr: float | None = None
    bn_recalibration: int = 0
    ema_decay: float = 0.0
    warmup: int = 0
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    grad_clip: float = 0.0
    cpu_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.freeze_batchnorm and self.bn_recalibration:
            raise PcdkitError("job.bn_recalibration re-estimates the BatchNorm statistics that "
                              "job.freeze_batchnorm keeps fixed: set one of them")

    def training(self) -> TrainSettings:
        """The loop's share of the settings."""
        return TrainSettings(
            iterations=self.iterations, lr=self.lr, log_every=self.log_every,
            checkpoint_every=self.checkpoint_every, eval_every=self.val_every,
            warmup=self.warmup, lr_schedule=self.lr_schedule, lr_min=self.lr_min,
            grad_clip=self.grad_clip, ema_decay=self.ema_decay, cpu_minutes=self.cpu_minutes)


class TrainDenoiserJob:
    """Train (or fine-tune) a trainable point-cloud denoiser (default: score-denoise)."""

    def __init__(self, **settings: Any) -> None:
        settings["val_noises"] = tuple(settings.get("val_noises", ()))
        self.s = DenoiserSettings(**settings)

    @staticmethod
    def check(pipe: Pipeline) -> list[tuple[str, str]]:
        """At validate time: IGO heads need a corruption that returns their intermediates."""
        head, corruption = pipe.slots.get("head"), pipe.slots.get("corruption")
        if head is None:
            return []
        if corruption is None:
            return [("corruption", NEEDS_CORRUPTION)]
        network = pipe.slots["backbone"].create().network()
        taus = list(head.create(backbone=network).taus)
        try:
            check_intermediates(corruption.create(), taus, corruption.spec.origin)
        except PcdkitError as exc:
            return [("corruption", str(exc))]
        return []

    def _validation_key(self, ctx: JobContext) -> str:
        """A digest of what validation measures (shapes, count, noise levels): best.pt is the
        best on one validation set, chosen afresh when a resumed run's set differs."""
        section = ctx.section("val_dataset")
        what = [section.as_dict() if section is not None else None, self.s.val_shapes,
                list(self.s.val_noises)]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train; returns final loss, validation Chamfer distance and the checkpoint path."""
        s, device = self.s, ctx.device
        clouds = [shape.points for ds in ctx.build("datasets") for shape in ds]
        if not clouds:
            raise PcdkitError("datasets: no training shapes")
        val = ctx.build("val_dataset")
        val_items = [val[i] for i in range(min(s.val_shapes, len(val)))] if val else []
        backbone = ctx.build("backbone")
        net = backbone.network()
        corruption = ctx.build("corruption")
        heads = ctx.build("head", backbone=net)
        if heads is not None and corruption is None:
            raise PcdkitError(f"corruption: {NEEDS_CORRUPTION}")
        taus = list(heads.taus) if heads is not None else []
        if taus:
            check_intermediates(corruption, taus, ctx.section("corruption").spec.origin)
        trained = net if heads is None else heads.combine(net, s.alpha)
        if heads is not None and ctx.is_primary:
            ctx.run.log.info("IGO parameter overhead: %s", heads.overhead(net))
        trained.to(device)
        self._train_mode(trained)
        opt = torch.optim.Adam(self._param_groups(trained, net, heads, ctx), lr=s.lr)
        trainer = Trainer(ctx, s.training(), {"model": trained}, opt,
                          generator=ctx.generator_for("training"),
                          fields=self._fields(heads, net),
                          extra={"best_val_cd": math.inf, "best_val_key": ""})
        val_key = self._validation_key(ctx)
        data_gen = trainer.generator
        run = ctx.run.path
        validated: dict[int, torch.nn.Module] = {}  # step -> the weights validated then

        def averaged_network() -> torch.nn.Module:
            return _network(trainer.averaged, heads)

        def loss(model: torch.nn.Module, step: int) -> tuple[torch.Tensor, dict[str, float]]:
            noisy, clean, inter = self._batch(clouds, data_gen, corruption, taus)
            kw: dict[str, Any] = {}
            if heads is not None:
                kw["intermediates"] = {t: x.to(device) for t, x in inter.items()}
            return model(noisy.to(device), clean.to(device), data_gen, **kw), {}

        def evaluate(done: int) -> dict[str, float]:
            if not val_items:
                return {}
            stream = ctx.generator_for("bn-recalibration", done)
            evaluated = self._recalibrated(averaged_network(), clouds, device, stream)
            figures = self._validate(backbone, evaluated, val_items, device, ctx.pipeline.seed)
            validated.clear()
            validated[done] = evaluated  # exported if a checkpoint falls on this step
            row = {"val_cd": figures["cd"], "val_p2m": figures["p2m"]}
            if trainer.ema is not None:  # what the average buys, measured on the same shapes
                raw = self._recalibrated(_network(trained, heads), clouds, device,
                                         ctx.generator_for("bn-recalibration", done))
                raw_val = self._validate(backbone, raw, val_items, device, ctx.pipeline.seed)
                row |= {"val_cd_raw": raw_val["cd"], "val_p2m_raw": raw_val["p2m"]}
                figures |= {f"raw_{k}": v for k, v in raw_val.items()}
            if ctx.is_primary:
                ctx.run.log.info("step %d validation: %s", done, figures)
            if trainer.extra["best_val_key"] != val_key:  # a best on other shapes is no bar
                if ctx.is_primary and ctx.resume:
                    why = ("the validation set changed since best.pt was chosen" if
                           trainer.extra["best_val_key"] else "the resumed state predates "
                           "validation-set tracking")
                    ctx.run.log.info("%s: the best checkpoint is chosen afresh from step %d",
                                     why, done)
                trainer.extra["best_val_cd"], trainer.extra["best_val_key"] = math.inf, val_key
                if ctx.is_primary:  # the bar the curve is drawn against, on these shapes
                    noisy_val = self._validate(backbone, None, val_items, device,
                                               ctx.pipeline.seed)
                    ctx.run.log.info("validation of the noisy input: %s", noisy_val)
                    atomic_write_text(run / NOISY_VAL, json.dumps(noisy_val, indent=1))
            if figures["cd"] < trainer.extra["best_val_cd"]:
                trainer.extra["best_val_cd"] = figures["cd"]
                if ctx.is_primary:
                    self._export(backbone, evaluated, run / "checkpoints" / "best.pt", done,
                                 {"validation": figures})
                    if heads is not None:
                        _save_heads(trainer.averaged, run / "checkpoints" / "best-heads.pt", done)
                    ctx.run.log.info("step %d: best validation so far %s", done, figures)
            return row

        def on_checkpoint(done: int) -> None:
            network = validated.get(done) or averaged_network()
            self._export(backbone, network, run / "checkpoints" / "model.pt", done,
                         {"best_val_cd": trainer.extra["best_val_cd"]})
            if heads is not None:
                _save_heads(trainer.averaged, run / "checkpoints" / "heads.pt", done)

        last = trainer.fit(loss, evaluate=evaluate, on_checkpoint=on_checkpoint,
                           on_log=(lambda: heads.diversity(net)) if heads is not None else None,
                           plot=_plot)
        metrics: dict[str, Any] = {"iterations": s.iterations, "world_size": ctx.world_size,
                                   "final_loss": last.get("loss", float("nan")),
                                   "val_cd": last.get("val_cd", float("nan")),
                                   "best_val_cd": trainer.extra["best_val_cd"],
                                   "checkpoint": str(run / "checkpoints" / "model.pt")}
        if heads is not None:
            metrics["igo_parameters"] = heads.overhead(net)
            metrics["igo_diversity"] = heads.diversity(net)
        if ctx.world_size > 1:
            metrics["ddp_weight_max_diff"] = _max_rank_difference(trained)
        return metrics

    def _fields(self, heads: Any, net: torch.nn.Module) -> tuple[str, ...]:
        return (FIELDS + (EMA_FIELDS if self.s.ema_decay > 0 else ())
                + (tuple(heads.diversity(net)) if heads is not None else ()))

    def _batch(self, clouds: list[torch.Tensor], gen: torch.Generator, corruption: Any,
               taus: list[float]) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
        s = self.s
        sets = [make_training_patches(
            clouds[int(torch.randint(len(clouds), (1,), generator=gen))], gen, num=1,
            patch_size=s.patch_size, patch_ratio=s.patch_ratio, noise_min=s.noise_min,
            noise_max=s.noise_max, scale_range=s.scale_range, rotate=s.rotate,
            backend=s.backend, corruption=corruption, taus=taus)
            for _ in range(s.batch_size)]
        inter = {t: torch.cat([p[2][t] for p in sets]) for t in taus}
        return torch.cat([p[0] for p in sets]), torch.cat([p[1] for p in sets]), inter

    def _param_groups(self, trained: torch.nn.Module, net: torch.nn.Module, heads: Any,
                      ctx: JobContext) -> list[dict]:
        # Adam moves every weight by about lr per step whatever its gradient's scale; the output
        # layer maps O(1) BatchNorm'd activations onto scores of size ~0.01, so at lr 1e-3 its
        # steps alone are larger than the targets (measured: loss stays at the zero-score level).
        # IGO's D_tau replaces that layer for x_tau, so it takes the same rate.
        if self.s.output_lr is None:
            return [{"params": list(trained.parameters())}]
        layer = getattr(net, "output_layer", None)
        if not isinstance(layer, torch.nn.Module):
            raise PcdkitError(f"job.output_lr: the network of {ctx.section('backbone').spec.origin}"
                              " has no `output_layer`; remove job.output_lr")
        outputs = list(layer.parameters())
        for tau in heads.taus if heads is not None else ():
            outputs += list(heads.pair(tau)[1].parameters())
        out = {id(p) for p in outputs}
        return [{"params": [p for p in trained.parameters() if id(p) not in out]},
                {"params": outputs, "lr": self.s.output_lr}]

    def _recalibrated(self, net: torch.nn.Module, clouds: list[torch.Tensor],
                      device: torch.device, gen: torch.Generator) -> torch.nn.Module:
        """``net`` itself without ``bn_recalibration``; else a copy whose BatchNorm running
        statistics are the plain average over that many fresh training batches.

        With a high learning rate the running averages (momentum 0.1) trail the weights; the
        copy leaves the training state, and so an exact resume, untouched.
        """
        if self.s.bn_recalibration <= 0:
            return net
        calibrated = copy.deepcopy(net).train()
        norms = [m for m in calibrated.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        # a compiled training forward would recompile for the copy's new parameters (dynamo
        # guards on them) each validation; these few batches run faster eagerly
        with torch.no_grad(), torch.compiler.set_stance("force_eager"):
            for _ in range(self.s.bn_recalibration):
                # the plain Gaussian loss: only the BatchNorm statistics matter here
                noisy, clean, _ = self._batch(clouds, gen, None, [])
                calibrated(noisy.to(device), clean.to(device), gen)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        return calibrated.eval()

    def _validate(self, backbone: Any, net: torch.nn.Module | None, items: list,
                  device: torch.device, seed: int) -> dict[str, float]:
        """Mean CD and P2M (and per noise level) of the validation shapes denoised by the
        backbone's full schedule, as users run it; ``net`` None scores the noisy input."""
        was_training = net is not None and net.training
        if net is not None:
            net.eval()
        metrics: dict[str, Any] = {"cd": Chamfer(squared=True, norm=2, direction="both",
                                                 backend="auto")}
        if all(shape.mesh is not None for shape in items):
            metrics["p2m"] = P2M(direction="both", min_triangle_area=0.0, backend="auto")
        out: dict[str, float] = {}
        for std in self.s.val_noises:
            noise = GaussianNoise(std)
            rows = []
            for i, shape in enumerate(items):
                gt = shape.points.to(device)
                noisy = noise(gt, generator=shape_noise_generator(seed, i, "validation")).x_t
                with torch.no_grad():
                    pred = noisy if net is None else backbone.denoise_with(net, noisy)
                rows.append(evaluate_shape(pred, metrics, gt=gt, mesh=shape.mesh))
            for name in metrics:
                out[f"{name}@{std:g}"] = sum(r[name] for r in rows) / len(rows)
        for name in ("cd", "p2m"):
            vals = [v for k, v in out.items() if k.startswith(f"{name}@")]
            out[name] = sum(vals) / len(vals) if vals else float("nan")
        if was_training:
            self._train_mode(net)
        return out

    def _export(self, backbone: Any, net: torch.nn.Module, path: Path, step: int,
                extra: dict[str, Any]) -> None:
        """A checkpoint the backbone plugin's ``checkpoint`` setting reads back."""
        config = {**backbone.config(), "training": jsonable(dataclasses.asdict(self.s))}
        ckpt = Checkpoint(backbone.checkpoint_model, net.state_dict(), config=config,
                          extra={"step": step, **extra})
        save_checkpoint(ckpt, path, overwrite=True)

    def _train_mode(self, net: torch.nn.Module) -> None:
        """Training mode; with ``freeze_batchnorm`` the BatchNorm layers keep their running
        statistics (fine-tuning on other data or noise must not overwrite them)."""
        net.train()
        if self.s.freeze_batchnorm:
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()


def check_intermediates(corruption: Any, taus: list[float], origin: str) -> None:
    """Refuse a corruption process that returns no intermediate iterate at some tau (probed
    on a small random cloud), naming the plugin."""
    gen = torch.Generator().manual_seed(0)
    try:
        probe = corruption(torch.randn(1, 64, 3, generator=gen), generator=gen, taus=taus)
    except ValueError as exc:
        raise PcdkitError(f"{origin} cannot return intermediate iterates at tau={taus}: {exc}; "
                          "IGO training needs a process that does (e.g. gaussian, "
                          "pointcloud-em, swap-clean)") from None
    missing = [t for t in taus if t not in probe.intermediates]
    if missing:
        raise PcdkitError(f"{origin} returns no intermediate iterate at tau={missing}; IGO "
                          "training needs a process that does (e.g. gaussian, pointcloud-em, "
                          "swap-clean)")


def _network(trained: torch.nn.Module, heads: Any) -> torch.nn.Module:
    """The backbone network inside the trained module (the IGO module holds it as
    ``backbone``)."""
    return trained.backbone if heads is not None else trained


def _save_heads(trained: torch.nn.Module, path: Path, step: int) -> None:
    """The heads of ``trained`` (the combined IGO module whose backbone is exported beside
    them: with ``ema_decay`` the average, so heads and backbone are the same step's pair)."""
    heads = trained.heads
    save_checkpoint(Checkpoint("igo-score-denoise-heads", heads.state_dict(),
                               config={"taus": list(heads.taus)}, extra={"step": step}), path,
                    overwrite=True)


def _max_rank_difference(net: torch.nn.Module) -> float:
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return float((hi - lo).abs().max())


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
    for ax in axes:  # five-digit step labels overlap at matplotlib's default tick count
        ax.locator_params(axis="x", nbins=5)
    fig.tight_layout()
    fig.savefig(path / "training.png", dpi=100)
    plt.close(fig)
