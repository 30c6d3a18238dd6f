"""Compare denoisers in one table (the IGO paper's Table 1): every backbone on every shape of every
dataset (e.g. one per resolution) at every noise level.

The noisy inputs follow the evaluation protocol of :mod:`pcdkit.jobs.evaluate` (Gaussian noise
relative to the unit-sphere radius, the same per-shape seeds), so a row here equals an
``evaluate`` run with the same settings. Results are appended to ``per_shape.csv`` as they come;
``--resume`` skips the (dataset, noise, method, shape) cells already there, so a run of several
CPU-hours survives interruptions. Outputs: ``table.md`` (mean CD / P2M x ``table_scale`` per
method and setting, seconds per cloud, and the published numbers of the same methods beside
them), ``table.png`` (one panel per setting) and ``metrics.json``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcdkit.core.context import JobContext
from pcdkit.corruptions.gaussian import GaussianNoise
from pcdkit.errors import PcdkitError
from pcdkit.jobs.evaluate import metric_names
from pcdkit.metrics.protocol import evaluate_shape, shape_noise_generator
from pcdkit.render import pyplot

PUBLISHED = {"igo-table1": Path(__file__).with_name("published") / "igo_table1.csv"}
KEYS = ("points", "noise", "method", "shape")


@dataclass(frozen=True)
class CompareSettings:
    """compare-denoisers' settings (documented with the plugin's parameters)."""

    noises: tuple[float, ...]
    labels: tuple[str, ...] | None
    limit: int | None
    table_scale: float
    published: str


class CompareJob:
    """Every backbone x dataset x noise level x shape, one table."""

    def __init__(self, **settings: Any) -> None:
        settings["noises"] = tuple(settings["noises"])
        if settings.get("labels") is not None:
            settings["labels"] = tuple(settings["labels"])
        self.s = CompareSettings(**settings)

    @staticmethod
    def check(pipe: Any) -> list[tuple[str, str]]:
        """At validate time: one label per backbone, all different."""
        labels = pipe.job.settings.get("labels")
        n = len(pipe.slots.get("backbones") or [])
        if labels is not None and (len(labels) != n or len(set(labels)) != n):
            return [("job.labels", f"expected {n} different labels, one per backbone, got "
                                   f"{list(labels)}")]
        return []

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Denoise and score everything not yet in ``per_shape.csv``; write the table."""
        s = self.s
        datasets = ctx.build("datasets")
        backbones = ctx.build("backbones")
        metrics = dict(zip(metric_names(ctx.section("metrics")), ctx.build("metrics"),
                           strict=True))
        labels = list(s.labels or metric_names(ctx.section("backbones")))
        file = ctx.run.path / "per_shape.csv"
        done = {tuple(r[k] for k in KEYS) for r in _read(file)}
        fields = [*KEYS, *metrics, "seconds"]
        work = [(d, std) for d in datasets for std in s.noises]
        total = sum(min(len(d), s.limit or len(d)) for d, _ in work) * len(backbones)
        bar = iter(ctx.progress(range(total), "compare", total=total))
        for ds, std in work:
            noise = GaussianNoise(std)
            for i in range(min(len(ds), s.limit or len(ds))):
                shape = ds[i]
                gt = shape.points.to(ctx.device)
                mesh = shape.mesh.to(ctx.device) if shape.mesh is not None else None
                gen = shape_noise_generator(ctx.pipeline.seed, i, "evaluate")
                noisy = noise(gt.unsqueeze(0), generator=gen).x_t[0]
                for label, backbone in zip(labels, backbones, strict=True):
                    next(bar, None)
                    key = (str(len(gt)), f"{std:g}", label, shape.name)
                    if key in done:
                        continue
                    start = time.perf_counter()
                    with torch.inference_mode():  # own stream: the order of methods is moot
                        pred = backbone.denoise(noisy, generator=ctx.generator_for(
                            f"denoise/{label}/{std:g}", i))
                    seconds = round(time.perf_counter() - start, 3)
                    row = dict(zip(KEYS, key, strict=True)) | evaluate_shape(
                        pred, metrics, gt=gt, mesh=mesh) | {"seconds": seconds}
                    _append(file, row, fields)
                    ctx.run.log.info("%s", row)
        rows = _read(file)
        table = _means(rows, list(metrics))
        published = _published(s.published)
        ctx.run.artifact("table.md").write_text(
            _markdown(table, published, labels, list(metrics), s.table_scale), encoding="utf-8")
        _plot(table, published, labels, list(metrics), s.table_scale,
              ctx.run.path / "table.png")
        return {"table": table, "table_scale": s.table_scale, "cells": len(rows)}


def _read(file: Path) -> list[dict[str, str]]:
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _append(file: Path, row: dict[str, Any], fields: list[str]) -> None:
    new = not file.is_file()
    with open(file, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()


def _means(rows: list[dict[str, str]], metrics: list[str]) -> list[dict[str, Any]]:
    """Mean of each metric and of the seconds per (points, noise, method)."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["points"], r["noise"], r["method"]), []).append(r)
    out = []
    for (points, noise, method), rs in groups.items():
        out.append({"points": int(points), "noise": float(noise), "method": method,
                    "shapes": len(rs), "seconds": sum(float(r["seconds"]) for r in rs) / len(rs),
                    **{m: sum(float(r[m]) for r in rs) / len(rs) for m in metrics}})
    return out


def _published(name: str) -> list[dict[str, str]]:
    if name == "none":
        return []
    if name not in PUBLISHED:
        raise PcdkitError(f"job.published: unknown table {name!r}; known: "
                          f"{', '.join(PUBLISHED)}, none")
    with open(PUBLISHED[name], encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _settings(table: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return sorted({(r["points"], r["noise"]) for r in table})


def _markdown(table: list[dict[str, Any]], published: list[dict[str, str]], labels: list[str],
              metrics: list[str], scale: float) -> str:
    settings = _settings(table)
    cell = {(r["points"], r["noise"], r["method"]): r for r in table}
    head = " | ".join(f"{p // 1000}K {n:.0%} {m}" for p, n in settings for m in metrics)
    lines = [f"Mean over shapes, x{scale:g}; seconds = mean denoising time per cloud.", "",
             f"| method | {head} | seconds ({', '.join(f'{p // 1000}K' for p, _ in settings)}) |",
             "|---|" + "---|" * (len(settings) * len(metrics) + 1)]
    for label in labels:
        vals = [cell.get((p, n, label), {}).get(m) for p, n in settings for m in metrics]
        secs = [cell.get((p, n, label), {}).get("seconds") for p, n in settings]
        lines.append(f"| {label} | " + " | ".join("" if v is None else f"{v * scale:.3f}"
                                                   for v in vals)
                     + " | " + ", ".join("" if t is None else f"{t:.1f}" for t in secs) + " |")
    rows = [r for r in published if any(int(r["points"]) == p and float(r["noise"]) == n
                                         for p, n in settings)]
    if rows:
        lines += ["", "Published (IGO paper, Table 1; the official PU-Net test clouds, not these "
                  "shapes: not comparable one to one):", "",
                  f"| method (pcdkit label) | {head} |",
                  "|---|" + "---|" * (len(settings) * len(metrics))]
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = {(int(r["points"]), float(r["noise"])): r for r in rows if r["method"] == method}
            label = next(r["as"] for r in rows if r["method"] == method)
            vals = [mine.get((p, n), {}).get(m, "") for p, n in settings for m in metrics]
            lines.append(f"| {method} ({label}) | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _plot(table: list[dict[str, Any]], published: list[dict[str, str]], labels: list[str],
          metrics: list[str], scale: float, path: Path) -> None:
    """One panel per setting: bars = this run's mean CD per method, dots = published."""
    plt = pyplot()
    if plt is None or not table or not metrics:
        return
    settings = _settings(table)
    metric = metrics[0]
    fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 3.6),
                             squeeze=False)
    cell = {(r["points"], r["noise"], r["method"]): r for r in table}
    for ax, (p, n) in zip(axes[0], settings, strict=True):
        vals = [cell.get((p, n, lab), {}).get(metric, float("nan")) * scale for lab in labels]
        ax.bar(range(len(labels)), vals, color="tab:blue", label="this run")
        ref = {r["as"]: float(r[metric]) for r in published
               if int(r["points"]) == p and float(r["noise"]) == n and metric in r}
        xs = [i for i, lab in enumerate(labels) if lab in ref]
        if xs:
            ax.plot(xs, [ref[labels[i]] for i in xs], "o", color="tab:red", label="published")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{p // 1000}K points, {n:.0%} noise", fontsize=9)
        ax.set_ylabel(f"{metric} x{scale:g}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
