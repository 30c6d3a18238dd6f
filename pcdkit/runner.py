"""Compose a validated pipeline into a run: device, seed, run directory, job, metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pcdkit.device import resolve_device, seed_everything
from pcdkit.jobs.base import JobContext
from pcdkit.pipeline import Pipeline
from pcdkit.rundir import RunDir


def run_pipeline(
    pipe: Pipeline, out: str | Path | None = None, root: str | Path = "runs", quiet: bool = False
) -> tuple[RunDir, dict[str, Any]]:
    """Run a pipeline's job in a fresh run directory; returns the directory and final metrics."""
    device = resolve_device(pipe.device)
    run = RunDir.create(pipe.name, out=out, root=root, inputs=pipe.input_paths)
    try:
        run.write_config(pipe.resolved())
        run.log.info("pipeline %s (job %s) on %s, seed %d", pipe.name, pipe.job.spec.name,
                     device, pipe.seed)
        generator = seed_everything(pipe.seed)
        job = pipe.job.create()
        ctx = JobContext(pipe, device, generator, run, quiet=quiet)
        start = time.perf_counter()
        metrics = job.run(ctx)
        metrics = dict(metrics)
        metrics.setdefault("seconds", round(time.perf_counter() - start, 3))
        run.write_metrics(metrics)
        run.log.info("finished: %s", metrics)
        return run, metrics
    except BaseException as exc:
        run.log.exception("run failed: %s", exc)
        raise
    finally:
        run.close()
