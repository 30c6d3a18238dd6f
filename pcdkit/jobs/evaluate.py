"""The evaluation job: dataset -> corruption -> backbone -> metrics, per shape and mean."""

from __future__ import annotations

from typing import Any

import torch

from pcdkit.core.context import JobContext
from pcdkit.core.pipeline import Section
from pcdkit.io import write_points
from pcdkit.jobs.tables import write_tables
from pcdkit.metrics.protocol import evaluate_shape, shape_noise_generator, summarize


def metric_names(sections: list[Section]) -> list[str]:
    """Names of a many-slot's sections (metric columns, compared methods): plugin names, with
    #2, #3 for repeats."""
    names, seen = [], {}
    for sec in sections:
        n = sec.spec.name
        seen[n] = seen.get(n, 0) + 1
        names.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return names


class EvaluateJob:
    """Score a backbone (or the corrupted input) on every shape of a dataset."""

    def __init__(self, limit: int | None, save_clouds: bool, score_input: bool,
                 table_scale: float, render: bool) -> None:
        self.render = render
        self.limit = limit
        self.save_clouds = save_clouds
        self.score_input = score_input
        self.table_scale = table_scale

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Evaluate and write ``per_shape.csv``, ``per_shape.md`` and the mean."""
        dataset = ctx.build("dataset")
        corruption = ctx.build("corruption")
        backbone = ctx.build("backbone")
        sections = ctx.section("metrics")
        metrics = dict(zip(metric_names(sections), ctx.build("metrics"), strict=True))
        n = len(dataset) if self.limit is None else min(self.limit, len(dataset))
        rows: list[dict[str, Any]] = []
        for i in ctx.progress(range(n), "evaluate", total=n):
            shape = dataset[i]
            gen = shape_noise_generator(ctx.pipeline.seed, i, "evaluate")
            gt = shape.points.to(ctx.device)
            mesh = shape.mesh.to(ctx.device) if shape.mesh is not None else None
            # the contract of point-cloud jobs: corruptions receive a batch (B, N, 3)
            noisy = (corruption(gt.unsqueeze(0), generator=gen).x_t[0] if corruption is not None
                     else gt)
            row: dict[str, Any] = {"shape": shape.name, "points": int(gt.shape[0])}
            pred = noisy
            if backbone is not None:
                with torch.inference_mode():
                    pred = backbone.denoise(noisy, generator=gen)
            if self.score_input and pred is not noisy:  # a backbone that returns its input
                # (identity) needs no second score of the same cloud
                row |= {f"input_{k}": v for k, v in
                        evaluate_shape(noisy, metrics, gt=gt, mesh=mesh).items()}
            row |= evaluate_shape(pred, metrics, gt=gt, mesh=mesh)
            rows.append(row)
            ctx.run.log.info("%s: %s", shape.name, row)
            if self.render:
                from pcdkit.render import render_clouds

                render_clouds([noisy, pred, gt], ["input", "output", "clean"],
                              ctx.run.artifact(f"pictures/{shape.name}.png"))
            if self.save_clouds:
                write_points(ctx.run.artifact(f"clouds/{shape.name}_input.xyz"), noisy)
                write_points(ctx.run.artifact(f"clouds/{shape.name}_output.xyz"), pred)
        mean = summarize([{k: v for k, v in r.items() if k != "points"} for r in rows])
        write_tables(rows, mean, ctx.run.artifact("per_shape.csv"),
                     ctx.run.artifact("per_shape.md"), scale=self.table_scale,
                     title=f"{ctx.pipeline.name}: per-shape results")
        scaled = {k: v * self.table_scale for k, v in mean.items()}
        return {"summary": mean, "table_scale": self.table_scale, "summary_scaled": scaled,
                "shapes": len(rows), "per_shape": rows}
