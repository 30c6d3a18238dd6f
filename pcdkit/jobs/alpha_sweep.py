"""IGO's alpha sweep for image generation (paper Fig. 2): one score model per alpha, trained
with the same seed, data and budget, sampled with the same prior draws, scored by FD-MNIST.

Each alpha gets its own sub-run ``alpha-<a>/`` (checkpoints, metrics.csv, sample grids);
the job writes ``alpha_sweep.csv``, ``alpha_sweep.md`` and ``alpha_sweep.png`` (FD against
alpha). ``--resume`` skips finished alphas and continues the interrupted one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import torch

from pcdkit.core.atomic import atomic_write_text
from pcdkit.core.context import JobContext
from pcdkit.core.rundir import RunDir
from pcdkit.errors import PcdkitError
from pcdkit.jobs.image_score import ImageScoreJob
from pcdkit.render import pyplot


class AlphaSweepJob(ImageScoreJob):
    """:class:`ImageScoreJob` repeated for each alpha in ``alphas``."""

    def __init__(self, alphas: Sequence[float], **settings: Any) -> None:
        if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
            raise PcdkitError(f"job.alphas: expected a non-empty list of values in [0, 1], "
                              f"got {list(alphas)}")
        super().__init__(**settings, alpha=1.0, fd=True)
        self.alphas = [float(a) for a in alphas]

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Train, sample and score per alpha; returns the table rows."""
        data = self.dataset(ctx)  # read once, shared by every alpha
        if ctx.section("head") is None:
            raise PcdkitError("head: the alpha sweep needs IGO heads (e.g. plugin: igo-unet)")
        feature_net, real, acc = self.feature_network(ctx, data)
        rows = []
        for alpha in self.alphas:
            sub = ctx.run.path / f"alpha-{alpha:g}"
            done = sub / "metrics.json"
            if done.is_file():
                rows.append(json.loads(done.read_text()))
                continue
            sub.mkdir(exist_ok=True)
            sub_ctx = dataclasses.replace(ctx, run=RunDir(sub))
            try:
                torch.manual_seed(ctx.pipeline.seed)  # every alpha starts from the same weights
                net, heads, process = self.model_parts(ctx)
                fitted = self.fit(sub_ctx, alpha, data, net, heads, process)
                model = fitted.pop("ema")
                fitted |= self.sample_and_score(sub_ctx, model, process, real, feature_net)
                sub_ctx.run.write_metrics(fitted)
            finally:
                sub_ctx.run.close()
            rows.append(fitted)
        self._report(ctx, rows)
        return {"classifier_accuracy": acc, "rows": rows}

    def _report(self, ctx: JobContext, rows: list[dict[str, Any]]) -> None:
        keys = [k for k in ("fd_pc", "fd_em", "fd_ode", "final_loss", "ode_nfe") if k in rows[0]]
        lines = ["alpha," + ",".join(keys)]
        lines += [f"{r['alpha']:g}," + ",".join(f"{r[k]:.6g}" for k in keys) for r in rows]
        atomic_write_text(ctx.run.path / "alpha_sweep.csv", "\n".join(lines) + "\n")
        md = ["| alpha | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        md += [f"| {r['alpha']:g} | " + " | ".join(f"{r[k]:.4g}" for k in keys) + " |"
               for r in rows]
        atomic_write_text(ctx.run.path / "alpha_sweep.md", "\n".join(md) + "\n")
        plt = pyplot()
        if plt is None:
            return
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for k in (k for k in keys if k.startswith("fd_")):
            ax.plot([r["alpha"] for r in rows], [r[k] for r in rows], marker="o",
                    label=k[3:].upper())
        ax.set(xlabel="alpha (weight of the final iterate)", ylabel="FD-MNIST",
               title="sample quality against alpha")
        ax.legend()
        fig.tight_layout()
        fig.savefig(ctx.run.path / "alpha_sweep.png", dpi=100)
        plt.close(fig)
