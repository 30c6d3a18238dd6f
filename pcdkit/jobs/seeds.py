"""Repeat a pipeline over seeds and variants, then tabulate every figure's mean and spread.

Each (variant, seed) is a whole run of the base pipeline in ``runs/<variant>-seed<seed>/`` of
this run directory, with the ``common`` overrides, then the variant's, then ``seed`` applied
(overrides as ``--set`` takes them: dotted keys, a slot name alone replaces the section, e.g.
``model: node``). ``--resume`` of the sweep skips runs that finished with the same
configuration and resumes the others, so a sweep of training runs is a campaign that can stop
at any time; raising a training budget (``job.cpu_minutes``) and resuming continues every run.

Tables: ``runs.csv`` (one row per run, every numeric figure of its ``metrics.json``, nested
dictionaries flattened with dots) and ``summary.md`` / ``summary.csv`` (per figure and variant:
mean, sample standard deviation over seeds, and the number of seeds). With ``paired_with``
(a variant's name), ``paired.md`` / ``paired.csv``: every other variant minus that one *within
each seed* (mean, sample std, seeds, paired t with seeds - 1 degrees of freedom). When a seed
moves every variant alike (e.g. an evaluation model trained per seed), the paired difference
is the comparison that the spread over seeds hides.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pcdkit.core import pipeline
from pcdkit.core.atomic import atomic_write_text
from pcdkit.core.context import JobContext
from pcdkit.core.runner import run_pipeline
from pcdkit.errors import ConfigError, Interrupted, PcdkitError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class SeedsSettings:
    """seeds' settings (documented with the plugin's parameters)."""

    pipeline: Path
    seeds: tuple[int, ...]
    variants: dict[str, dict[str, Any]]
    common: dict[str, Any]
    figures: tuple[str, ...] | None
    paired_with: str | None = None


def _overrides(mapping: dict[str, Any]) -> list[str]:
    """``{key: value}`` -> ``["key=<value as JSON>"]`` (JSON is YAML, so values survive)."""
    return [f"{key}={json.dumps(value)}" for key, value in mapping.items()]


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dictionaries as ``{"a.b": value}`` (lists are skipped)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


class SeedsJob:
    """Run a base pipeline for every variant x seed; mean and spread of every figure."""

    def __init__(self, pipeline: Path, seeds: list[int], variants: dict | None,
                 common: dict | None, figures: list[str] | None,
                 paired_with: str | None = None) -> None:
        variants = dict(variants or {"base": {}})
        for name, overrides in variants.items():
            if not NAME.match(str(name)):
                raise ConfigError([(f"job.variants.{name}", "expected a name of letters, "
                                    "digits, '_', '.', '+' or '-' (it names a folder)")])
            if not isinstance(overrides, dict):
                raise ConfigError([(f"job.variants.{name}", "expected a mapping of dotted "
                                    f"keys to values, got {type(overrides).__name__}")])
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError([("job.seeds", f"expected distinct seeds, got {seeds}")])
        if paired_with is not None and paired_with not in variants:
            raise ConfigError([("job.paired_with", f"expected one of the variants "
                                f"({', '.join(variants)}), got {paired_with!r}")])
        self.s = SeedsSettings(Path(pipeline), tuple(seeds), variants, dict(common or {}),
                               tuple(figures) if figures else None, paired_with)

    @staticmethod
    def check(pipe: pipeline.Pipeline) -> list[tuple[str, str]]:
        """At validate time: the settings, and every member's pipeline (base + overrides)."""
        try:
            job = pipe.job.create()
        except ConfigError as exc:
            return exc.problems
        problems = []
        for variant in job.s.variants:
            try:
                job.compose(variant, job.s.seeds[0])
            except PcdkitError as exc:  # a bad base file or an override that does not fit
                problems.append((f"job.variants.{variant}", str(exc).replace("\n", "; ")))
        return problems

    def compose(self, variant: str, seed: int) -> pipeline.Pipeline:
        """The base pipeline with the common, the variant's and the seed's overrides."""
        s = self.s
        config = pipeline.load_yaml(s.pipeline)
        sets = [*_overrides(s.common), *_overrides(s.variants[variant]), f"seed={seed}"]
        return pipeline.validate(pipeline.apply_overrides(config, sets), source=s.pipeline)

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Run or resume every member, then write the tables."""
        if ctx.world_size > 1:
            raise PcdkitError("job seeds runs its members one after another in one process; "
                              "launch it without torchrun")
        s = self.s
        members = [(v, seed) for v in s.variants for seed in s.seeds]
        rows = []
        for variant, seed in ctx.progress(members, "seeds", total=len(members)):
            pipe = self.compose(variant, seed)
            folder = ctx.run.path / "runs" / f"{variant}-seed{seed}"
            metrics = _finished(folder, pipe)
            if metrics is None:
                ctx.run.log.info("%s seed %d: %s", variant, seed,
                                 "resuming" if folder.exists() else "starting")
                try:
                    _, metrics = run_pipeline(pipe, out=None if folder.exists() else folder,
                                              resume=folder if folder.exists() else None,
                                              quiet=True)
                except Interrupted as exc:  # the sweep's directory resumes every member
                    raise Interrupted(exc.signum, exc.step, ctx.run.path, exc.where) from None
            rows.append({"variant": variant, "seed": seed, **flatten(metrics)})
        return self._tables(ctx, rows)

    def _tables(self, ctx: JobContext, rows: list[dict[str, Any]]) -> dict[str, Any]:
        names = list(dict.fromkeys(k for r in rows for k in r if k not in ("variant", "seed")))
        if self.s.figures is not None:
            missing = [f for f in self.s.figures if f not in names]
            if missing:
                raise PcdkitError(f"job.figures: {missing} not among the runs' figures "
                                  f"({', '.join(names[:20])}{', ...' if len(names) > 20 else ''})")
            names = list(self.s.figures)
        with open(ctx.run.artifact("runs.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["variant", "seed", *names], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        summary: dict[str, dict[str, dict[str, float]]] = {}
        for variant in self.s.variants:
            mine = [r for r in rows if r["variant"] == variant]
            for name in names:
                values = [r[name] for r in mine if name in r]
                if values:
                    mean, std = mean_std(values)
                    summary.setdefault(name, {})[variant] = {"mean": mean, "std": std,
                                                             "n": len(values)}
        variants = list(self.s.variants)
        lines = [f"# {ctx.pipeline.name}: mean ± sample std over seeds {list(self.s.seeds)}",
                 "", "| figure | " + " | ".join(variants) + " |",
                 "|---|" + "---|" * len(variants)]
        flat = ["figure,variant,mean,std,n"]
        for name, per in summary.items():
            cells = [f"{per[v]['mean']:.5g} ± {per[v]['std']:.2g}" if v in per else ""
                     for v in variants]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            flat += [f"{name},{v},{c['mean']!r},{c['std']!r},{c['n']}" for v, c in per.items()]
        atomic_write_text(ctx.run.path / "summary.md", "\n".join(lines) + "\n")
        atomic_write_text(ctx.run.path / "summary.csv", "\n".join(flat) + "\n")
        out: dict[str, Any] = {"summary": summary, "runs": len(rows)}
        if self.s.paired_with is not None:
            out["paired"] = self._paired(ctx, rows, names)
        return out

    def _paired(self, ctx: JobContext, rows: list[dict[str, Any]], names: list[str]
                ) -> dict[str, dict[str, dict[str, float]]]:
        """Per figure and variant: ``variant - paired_with`` within each seed, its mean, sample
        std, n and paired t (``mean / (std / sqrt(n))``; absent below two seeds or at std 0)."""
        base_name = self.s.paired_with
        base = {r["seed"]: r for r in rows if r["variant"] == base_name}
        others = [v for v in self.s.variants if v != base_name]
        paired: dict[str, dict[str, dict[str, float]]] = {}
        for name in names:
            for variant in others:
                diffs = [r[name] - base[r["seed"]][name] for r in rows
                         if r["variant"] == variant and name in r
                         and name in base.get(r["seed"], {})]
                if diffs:
                    mean, std = mean_std(diffs)
                    cell = {"mean": mean, "std": std, "n": len(diffs)}
                    if len(diffs) > 1 and std > 0:
                        cell["t"] = mean / (std / math.sqrt(len(diffs)))
                    paired.setdefault(name, {})[variant] = cell
        lines = [f"# {ctx.pipeline.name}: variant minus {base_name} within each seed "
                 "(mean ± sample std, paired t with seeds - 1 degrees of freedom)", "",
                 "| figure | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
        flat = ["figure,variant,mean,std,n,t"]
        for name, per in paired.items():
            cells = [f"{per[v]['mean']:+.5g} ± {per[v]['std']:.2g}"
                     + (f" (t = {per[v]['t']:.2f}, n = {per[v]['n']})" if "t" in per[v] else "")
                     if v in per else "" for v in others]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            flat += [f"{name},{v},{c['mean']!r},{c['std']!r},{c['n']},"
                     + (repr(c["t"]) if "t" in c else "") for v, c in per.items()]
        atomic_write_text(ctx.run.path / "paired.md", "\n".join(lines) + "\n")
        atomic_write_text(ctx.run.path / "paired.csv", "\n".join(flat) + "\n")
        return paired


def _finished(folder: Path, pipe: pipeline.Pipeline) -> dict[str, Any] | None:
    """The member's metrics when its latest invocation finished with this very configuration,
    else None (a resume that stopped mid-way leaves the earlier invocation's metrics behind)."""
    metrics, config = folder / "metrics.json", folder / "config.yaml"
    if not (metrics.is_file() and config.is_file()):
        return None
    resumes = sorted(folder.glob("config.resume-*.yaml"))
    latest = resumes[-1] if resumes else config
    written = pipeline.safe_yaml(latest.read_text(encoding="utf-8"))
    if written != pipeline.safe_yaml(yaml.safe_dump(pipe.resolved(), sort_keys=False)):
        return None
    result = json.loads(metrics.read_text(encoding="utf-8"))
    if "config" not in result:  # written before metrics named their config
        return result if not resumes or _reached_budget(result, pipe) else None
    return result if result["config"] == latest.name else None


def _reached_budget(metrics: dict[str, Any], pipe: pipeline.Pipeline) -> bool:
    """Whether older metrics of a resumed member reached this pipeline's CPU budget (without a
    budget there is nothing to tell them by: trusted, as before)."""
    budget = pipe.resolved().get("job", {}).get("cpu_minutes") or 0
    used = metrics.get("cpu_minutes_used", 0)
    return budget <= 0 or (isinstance(used, (int, float)) and used >= budget - 1e-3)
