"""Posterior sampling for inverse problems on point clouds: measure each clean shape with a forward
operator, draw several samples of p(x | y) by annealed Langevin dynamics with a learned score
prior (:mod:`pcdkit.operators.langevin`), score every sample, and compare with simple baselines.

Per shape: CD / P2M of each sample (mean and std over samples), the posterior's spread (mean
Chamfer distance between pairs of samples, in the protocol's unit-sphere frame), and the
baselines ``start`` (the operator's start, e.g. measured points repeated and jittered), for
subsampling ``midpoints`` (midpoints between each measured point and its nearest measured
neighbours until N points), and each of them followed by the prior backbone's own denoiser when
it has one (``+denoise``); with ``denoise_samples`` each sample, too, is scored after that
denoiser (``posterior+denoise``: its full schedule after the last noise level). Finished shapes
are kept in ``shapes.jsonl``; ``--resume`` skips them (each shape draws from its own random
streams, so a resumed run gives the same rows).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcdkit.core.atomic import atomic_write_text
from pcdkit.core.context import JobContext
from pcdkit.geometry.normalize import normalize_unit_sphere
from pcdkit.jobs.evaluate import metric_names
from pcdkit.jobs.tables import write_tables
from pcdkit.metrics.chamfer import chamfer_distance
from pcdkit.metrics.protocol import evaluate_shape, summarize
from pcdkit.operators.langevin import LangevinSettings, posterior_sample
from pcdkit.operators.points import midpoints


@dataclass(frozen=True)
class PosteriorSettings:
    """posterior-sample's settings (documented with the plugin's parameters)."""

    samples: int
    limit: int | None
    baselines: bool
    render: bool
    denoise_samples: bool
    langevin: LangevinSettings


class PosteriorJob:
    """Measure, sample the posterior several times, score samples and baselines."""

    def __init__(self, samples: int, limit: int | None, baselines: bool, render: bool,
                 denoise_samples: bool = False, **langevin: Any) -> None:
        self.s = PosteriorSettings(samples, limit, baselines, render, denoise_samples,
                                   LangevinSettings(**langevin))

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Returns the mean figures per method and the per-shape rows."""
        s = self.s
        dataset, operator = ctx.build("dataset"), ctx.build("operator")
        prior = ctx.build("prior")
        metrics = dict(zip(metric_names(ctx.section("metrics")), ctx.build("metrics"),
                           strict=True))
        n = len(dataset) if s.limit is None else min(s.limit, len(dataset))
        file = ctx.run.path / "shapes.jsonl"
        rows = _read_rows(file)
        for i in ctx.progress(range(n), "posterior", total=n):
            if i < len(rows):
                continue
            shape = dataset[i]
            gt = shape.points.to(ctx.device)
            mesh = shape.mesh.to(ctx.device) if shape.mesh is not None else None
            y = operator.measure(gt, generator=ctx.generator_for("measure", i))
            gen = ctx.generator_for("langevin", i)
            with torch.no_grad():
                draws = [posterior_sample(prior, operator, y, len(gt), s.langevin, gen)
                         for _ in range(s.samples)]
            row: dict[str, Any] = {"shape": shape.name, "measured": len(y)}
            row |= _sample_scores("posterior", draws, metrics, gt, mesh)
            if s.denoise_samples and hasattr(prior, "denoise"):
                with torch.inference_mode():
                    finished = [prior.denoise(x) for x in draws]
                row |= _sample_scores("posterior+denoise", finished, metrics, gt, mesh)
            if s.baselines:
                row |= self._baselines(ctx, operator, prior, y, gt, mesh, metrics, i)
            rows.append(row)
            _append_row(file, row)
            ctx.run.log.info("%s: %s", shape.name, row)
            if s.render:
                from pcdkit.render import render_clouds

                render_clouds([y, draws[0], draws[-1], gt],
                              ["measurement", "sample 1", f"sample {len(draws)}", "clean"],
                              ctx.run.artifact(f"pictures/{shape.name}.png"))
        mean = summarize([{k: v for k, v in r.items() if k != "measured"} for r in rows])
        write_tables(rows, mean, ctx.run.artifact("per_shape.csv"),
                     ctx.run.artifact("per_shape.md"), scale=1e4,
                     title=f"{ctx.pipeline.name}: posterior samples and baselines")
        return {"summary": mean, "shapes": len(rows), "samples": s.samples,
                "sigmas": s.langevin.sigmas(), "per_shape": rows}

    @staticmethod
    def _baselines(ctx: JobContext, operator: Any, prior: Any, y: torch.Tensor,
                   gt: torch.Tensor, mesh: Any, metrics: dict, i: int) -> dict[str, float]:
        out: dict[str, float] = {}
        yn, tf = normalize_unit_sphere(y)
        start = tf.invert(operator.initial(yn, len(gt), ctx.generator_for("baseline", i)))
        candidates = {"start": start}
        mids = midpoints(y, len(gt)) if len(y) < len(gt) else None
        if mids is not None:
            candidates["midpoints"] = mids
        if hasattr(prior, "denoise"):
            with torch.inference_mode():
                for label in list(candidates):
                    candidates[f"{label}+denoise"] = prior.denoise(candidates[label])
        for label, cloud in candidates.items():
            for name, value in evaluate_shape(cloud, metrics, gt=gt, mesh=mesh).items():
                out[f"{label}_{name}"] = value
        return out


def _read_rows(file: Path) -> list[dict[str, Any]]:
    """The rows of the shapes finished before a ``--resume`` (in dataset order); a last line cut
    by a crash is dropped from the file."""
    if not file.is_file():
        return []
    lines = file.read_text(encoding="utf-8").splitlines()
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    if len(rows) < len(lines):
        atomic_write_text(file, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _append_row(file: Path, row: dict[str, Any]) -> None:
    with open(file, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def _sample_scores(label: str, draws: list[torch.Tensor], metrics: dict, gt: torch.Tensor,
                   mesh: Any) -> dict[str, float]:
    """Mean and std over samples of each metric, and the samples' spread, keyed by ``label``."""
    scores = [evaluate_shape(x, metrics, gt=gt, mesh=mesh) for x in draws]
    out: dict[str, float] = {}
    for name in metrics:
        vals = torch.tensor([sc[name] for sc in scores], dtype=torch.float64)
        out[f"{label}_{name}"] = float(vals.mean())
        out[f"{label}_{name}_std"] = float(vals.std()) if len(vals) > 1 else 0.0
    out[f"{label}_spread"] = _spread(draws)
    return out


def _spread(draws: list[torch.Tensor]) -> float:
    """Mean symmetric Chamfer distance between pairs of samples (unit sphere of the first)."""
    if len(draws) < 2:
        return 0.0
    _, tf = normalize_unit_sphere(draws[0])
    pairs = [float(chamfer_distance(tf.apply(a), tf.apply(b)))
             for a, b in itertools.combinations(draws, 2)]
    return sum(pairs) / len(pairs)
