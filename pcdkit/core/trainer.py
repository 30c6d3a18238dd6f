"""One training loop for every training job (train-denoiser, image-score, train-dynamics).

A job supplies its modules, its optimiser and a loss closure; the :class:`Trainer` owns the rest:
the learning-rate schedule (a pure function of the settings and the step, so a resume with a new
``lr`` takes it from the next step on), the divergence check before each update, gradient
clipping (the norm is logged either way), the weight average (EMA of weights and buffers),
logging cadence, ``metrics.csv`` rows, checkpoints of the resumable state
(``checkpoints/last.pt``, written atomically, with every rank's generator), ``--resume`` (model,
average, optimiser, generator, step and the job's own scalars) and DistributedDataParallel under
torchrun.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pcdkit.core.context import JobContext
from pcdkit.core.signals import StopRequest, stop_requests
from pcdkit.core.state import load_state, restoring, save_state
from pcdkit.errors import Interrupted, PcdkitError

#: (training module, 0-based step) -> (scalar loss, scalars averaged into the log rows)
LossFn = Callable[[nn.Module, int], tuple[torch.Tensor, Mapping[str, float]]]


@dataclass(frozen=True)
class TrainSettings:
    """The optimisation settings every training job shares."""

    iterations: int
    lr: float
    log_every: int
    checkpoint_every: int
    eval_every: int = 0
    warmup: int = 0
    lr_schedule: Literal["constant", "cosine", "exponential"] = "constant"
    lr_min: float = 0.0
    lr_decay: float = 1.0
    decay_every: int = 1
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    cpu_minutes: float = 0.0

    def lr_factor(self, step: int) -> float:
        """Multiplier of every base learning rate at 0-based ``step``: linear warm-up, then
        constant, cosine to ``lr_min / lr`` at ``iterations``, or ``lr_decay ** (step //
        decay_every)``."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.lr_schedule == "exponential":
            return self.lr_decay ** (step // max(1, self.decay_every))
        if self.lr_schedule == "constant":
            return 1.0
        span = max(1, self.iterations - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        floor = self.lr_min / self.lr if self.lr > 0 else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def evaluates_at(self, done: int) -> bool:
        """True after the ``done``-th step when an evaluation is due (and after the last)."""
        return done == self.iterations or (self.eval_every > 0 and done % self.eval_every == 0)

    def out_of_budget(self, cpu_seconds: float) -> bool:
        """True once the run has used ``cpu_minutes`` of CPU time (0: no budget)."""
        return self.cpu_minutes > 0 and cpu_seconds >= 60 * self.cpu_minutes


@dataclass
class Trainer:
    """The loop around a job's loss: schedule, updates, average, logs, checkpoints, resume.

    ``modules["model"]`` is the module the loss runs (wrapped in DDP under torchrun, averaged
    when ``settings.ema_decay > 0``); further entries (e.g. IGO heads trained beside it) are
    saved and restored by name. ``extra`` holds the job's own scalars (e.g. the best
    validation figure), saved with the state and restored on resume. ``distributed`` False
    refuses torchrun. ``--resume`` of a run stopped before its first checkpoint starts afresh.
    """

    ctx: JobContext
    settings: TrainSettings
    modules: Mapping[str, nn.Module]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    fields: Sequence[str] = ()
    distributed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    ema: AveragedModel | None = field(init=False, default=None)
    step: int = field(init=False, default=0)
    #: CPU time of the training loop over all resumes (process time: every thread counts)
    cpu_seconds: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.settings.ema_decay > 0:  # buffers too: the average has its own BatchNorm stats
            self.ema = AveragedModel(self.modules["model"], use_buffers=True,
                                     multi_avg_fn=get_ema_multi_avg_fn(self.settings.ema_decay))
            self.ema.module.eval()
        if self.ctx.world_size > 1 and not self.distributed:
            raise PcdkitError(f"job {self.ctx.pipeline.job.spec.name!r} trains on one process; "
                              "launch it without torchrun")

    @property
    def state_path(self) -> Path:
        """``checkpoints/last.pt`` of the run."""
        return self.ctx.run.path / "checkpoints" / "last.pt"

    @property
    def averaged(self) -> nn.Module:
        """The weights a job evaluates and exports: the average when there is one."""
        return self.ema.module if self.ema is not None else self.modules["model"]

    # -- the loop --------------------------------------------------------------------------
    def fit(self, loss: LossFn, *, evaluate: Callable[[int], Mapping[str, float]] | None = None,
            on_log: Callable[[], Mapping[str, float]] | None = None,
            on_checkpoint: Callable[[int], None] | None = None,
            plot: Callable[[Path], None] | None = None, desc: str = "train") -> dict[str, Any]:
        """Run the remaining steps, or until ``cpu_minutes`` of CPU time are used (that step
        is then evaluated, logged and saved like the last); returns the last logged row.
        SIGTERM or Ctrl-C ends the current step, logs and saves it, and raises
        :class:`~pcdkit.errors.Interrupted` (no final evaluation: the run is not finished).

        ``evaluate(done)`` runs when :meth:`TrainSettings.evaluates_at` says so and its figures
        join that step's row; ``on_log()`` adds scalars to every row; ``on_checkpoint(done)``
        writes the job's exports beside the saved state; ``plot(run_path)`` redraws the curves
        after each evaluation and at the end.
        """
        s, ctx = self.settings, self.ctx
        if ctx.resume:
            self.restore()
        model = self.modules["model"]
        if ctx.world_size > 1:
            device = ctx.device
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        sums: dict[str, float] = {}
        # a resume with nothing left to run still reports the last logged figures
        count, last = 0, ctx.run.last_history_row() if ctx.resume else {}
        start, cpu_start, cpu_before = time.perf_counter(), time.process_time(), self.cpu_seconds
        writer = _tensorboard(ctx)
        todo = 0 if s.out_of_budget(self.cpu_seconds) else s.iterations - self.step
        bar = ctx.progress(range(self.step, self.step + todo), desc, total=todo)
        halted: int | None = None
        with stop_requests() as request:
            for step in bar:
                factor = s.lr_factor(step)
                for group, base in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
                    group["lr"] = base * factor
                value, parts = loss(model, step)
                scalar = value.item()
                if not math.isfinite(scalar):  # before the update: the saved weights stay finite
                    raise PcdkitError(f"training diverged at step {step + 1} (loss {scalar}); "
                                      f"continue with --resume {ctx.run.path} and a lower job.lr")
                self.optimizer.zero_grad(set_to_none=True)
                value.backward()
                grad_norm = float(nn.utils.clip_grad_norm_(
                    params, s.grad_clip if s.grad_clip > 0 else math.inf))
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.modules["model"])
                for k, v in {"loss": scalar, **parts}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                done = self.step = step + 1
                self.cpu_seconds = cpu_before + time.process_time() - cpu_start
                spent, halted = self._stop_flags(request)
                final = done == s.iterations or spent or halted is not None
                due = halted is None and (final or s.evaluates_at(done))  # a stop is prompt
                row: dict[str, Any] = dict(evaluate(done)) if evaluate and due else {}
                evaluated = bool(row)
                if evaluated or done % s.log_every == 0 or final:
                    row |= {"step": done, **{k: v / count for k, v in sums.items()},
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "grad_norm": round(grad_norm, 5),
                            "seconds": round(time.perf_counter() - start, 2)}
                    if on_log is not None:
                        row |= on_log()
                    sums, count, last = {}, 0, row
                    if ctx.is_primary:
                        ctx.run.append_history(row, self.fields or None)
                        if evaluated and plot is not None:  # the curve so far, to watch
                            plot(ctx.run.path)
                        if writer is not None:
                            for key, value in row.items():
                                if key != "step" and isinstance(value, float):
                                    writer.add_scalar(key, value, done)
                    if hasattr(bar, "set_postfix"):
                        bar.set_postfix(loss=f"{row['loss']:.4g}")
                if done % s.checkpoint_every == 0 or final:
                    self.save()
                    if on_checkpoint is not None and ctx.is_primary:
                        on_checkpoint(done)
                if final:
                    if halted is None and done < s.iterations:
                        ctx.run.log.info("job.cpu_minutes: %.1f CPU-minutes used at step %d, "
                                         "stopping", self.cpu_seconds / 60, done)
                    break
        if ctx.is_primary and plot is not None and s.iterations > 0:
            plot(ctx.run.path)
        if writer is not None:
            writer.close()
        if halted is not None:
            ctx.run.log.info("stopped by %s at step %d (state saved)",
                             signal.Signals(halted).name, self.step)
            raise Interrupted(halted, self.step, ctx.run.path)
        return last

    def _stop_flags(self, request: StopRequest) -> tuple[bool, int | None]:
        """(``cpu_minutes`` used up, stop signal or None); under torchrun every rank stops
        at the step where the first one does."""
        spent, signum = self.settings.out_of_budget(self.cpu_seconds), request.signum
        if self.ctx.world_size > 1:
            flags = torch.tensor([float(spent), float(signum or 0)], device=self.ctx.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            spent, signum = bool(flags[0].item()), int(flags[1].item()) or None
        return spent, signum

    # -- state -----------------------------------------------------------------------------
    def save(self) -> None:
        """Write the resumable state (every rank's generator; rank 0 writes)."""
        states = [self.generator.get_state()]
        if self.ctx.world_size > 1:
            states = [None] * self.ctx.world_size
            dist.all_gather_object(states, self.generator.get_state())
        if not self.ctx.is_primary:
            return
        state = {name: m.state_dict() for name, m in self.modules.items()}
        state |= {"optimizer": self.optimizer.state_dict(), "step": self.step, "rng": states,
                  "world_size": self.ctx.world_size, "cpu_seconds": self.cpu_seconds,
                  **self.extra}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        save_state(self.state_path, state)

    def restore(self) -> int:
        """Load the state of ``--resume``; returns the step it continues from (0 when the run
        stopped before its first checkpoint and never finished: it starts afresh)."""
        path, ctx = self.state_path, self.ctx
        # a finished run keeps its results: without its state it cannot be continued
        if not path.is_file() and not (ctx.run.path / "metrics.json").is_file():
            ctx.run.log.info("no training state in %s yet: starting from step 0", path.parent)
            if ctx.is_primary:
                ctx.run.truncate_history(0)
            return self.step
        state = load_state(path, ctx.world_size)
        with restoring(path):
            for name, module in self.modules.items():
                module.load_state_dict(state[name])
            if self.ema is not None and "ema" in state:
                self.ema.load_state_dict(state["ema"])
            elif self.ema is not None:  # the average switched on at this resume
                self.ema.module.load_state_dict(self.modules["model"].state_dict())
                ctx.run.log.info("job.ema_decay: no average in the checkpoint, starting one")
            self.optimizer.load_state_dict(state["optimizer"])
            rng = state["rng"]
            self.generator.set_state(rng[ctx.rank] if isinstance(rng, list) else rng)
            for key in self.extra:
                if key in state:
                    self.extra[key] = type(self.extra[key])(state[key])
        self.step = int(state["step"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))  # older states: not counted
        ctx.run.log.info("resumed at step %d", self.step)
        if ctx.is_primary:
            ctx.run.truncate_history(self.step)
        return self.step


def _tensorboard(ctx: JobContext) -> Any:
    """A TensorBoard writer in ``RUN/tensorboard`` when tensorboard is installed (rank 0)."""
    if not ctx.is_primary:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(ctx.run.path / "tensorboard"))
