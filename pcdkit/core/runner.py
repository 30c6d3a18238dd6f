"""Compose a validated pipeline into a run: device, seed, run directory, job, metrics."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from pcdkit.core import distributed
from pcdkit.core.context import JobContext
from pcdkit.core.device import resolve_device, seed_everything
from pcdkit.core.pipeline import Pipeline
from pcdkit.core.rundir import RunDir
from pcdkit.errors import Interrupted, PcdkitError
from pcdkit.report import write_report


def run_pipeline(
    pipe: Pipeline, out: str | Path | None = None, root: str | Path = "runs", quiet: bool = False,
    resume: str | Path | None = None, allow_changes: tuple[str, ...] = (),
) -> tuple[RunDir, dict[str, Any]]:
    """Run a pipeline's job in a fresh run directory (or continue ``resume``; the pipeline must
    equal the run's config outside ``job`` except in the sections named in ``allow_changes``).

    Under torchrun every rank joins the process group; rank 0 creates the directory and writes
    config and metrics, other ranks log to ``log.rank<N>.txt``. ``metrics["config"]`` names the
    config file of the invocation that finished (``config.yaml`` or ``config.resume-*.yaml``).
    """
    rank, world, device = distributed.init(resolve_device(pipe.device))
    path = None
    if rank == 0:
        try:
            run = (RunDir.resume(resume) if resume is not None else
                   RunDir.create(pipe.name, out=out, root=root, inputs=pipe.input_paths))
        except BaseException:
            distributed.broadcast(None)  # the other ranks stop too instead of waiting forever
            distributed.finish()
            raise
        path = str(run.path)
    path = distributed.broadcast(path)
    if path is None:
        distributed.finish()
        raise PcdkitError("rank 0 could not create the run directory (see its message)")
    if rank != 0:
        run = RunDir(Path(path), log_name=f"log.rank{rank}.txt")
    started, changed, name = False, [], "config.yaml"
    try:
        if resume is not None and rank == 0:
            changed = _check_resumable(pipe, run, allow_changes)
        if rank == 0:
            stamp = time.strftime('%Y%m%d-%H%M%S')
            if resume is not None and changed:  # the new sections become the run's config
                (run.path / "config.yaml").rename(run.path / f"config.before-{stamp}.yaml")
                run.log.info("resuming with changed %s (the former config.yaml is "
                             "config.before-%s.yaml)", ", ".join(changed), stamp)
            name = (f"config.resume-{stamp}.yaml" if resume is not None and not changed
                    else "config.yaml")
            run.write_config(pipe.resolved(), name)
        run.log.info("pipeline %s (job %s) on %s, seed %d, rank %d/%d", pipe.name,
                     pipe.job.spec.name, device, pipe.seed, rank, world)
        generator = seed_everything(pipe.seed + rank)
        job = pipe.job.create()
        ctx = JobContext(pipe, device, generator, run, quiet=quiet or rank != 0, rank=rank,
                         world_size=world, resume=resume is not None)
        earlier = _earlier_seconds(run.path) if resume is not None else 0.0
        start = time.perf_counter()
        started = True
        metrics = dict(job.run(ctx))
        metrics.setdefault("seconds", round(earlier + time.perf_counter() - start, 3))
        metrics["config"] = name  # which invocation finished: a later resume may stop mid-way
        if rank == 0:
            run.write_metrics(metrics)
            try:
                write_report(run.path)
            except OSError as exc:  # the run's results are written; the page is a convenience
                run.log.warning("report.html not written: %s", exc)
        run.log.info("finished: %s", {k: v for k, v in metrics.items() if k != "per_shape"})
        return run, metrics
    except Interrupted:  # a clean stop, logged by the trainer with its state saved
        raise
    except BaseException as exc:
        run.log.exception("run failed: %s", exc)
        if rank == 0 and not started and resume is None:
            run.close()
            _remove_unstarted(run.path)  # nothing of value yet: leave no half-made directory
        elif rank == 0:
            run.mark_failed(f"{type(exc).__name__}: {exc}\nresume with: pcdkit run PIPELINE "
                            f"--resume {run.path}")
        raise
    finally:
        run.close()
        distributed.finish()


def _earlier_seconds(path: Path) -> float:
    """Wall seconds the run's earlier finished invocations recorded in ``metrics.json`` (0 if
    none): a resumed run reports its total, not only the last invocation's."""
    try:
        value = json.loads((path / "metrics.json").read_text()).get("seconds", 0.0)
    except (OSError, ValueError, AttributeError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def _remove_unstarted(path: Path) -> None:
    """Delete a run directory whose job never started (only pcdkit's own set-up files)."""
    ours = {"config.yaml", "log.txt", ".pcdkit-run"}
    if all(p.name in ours for p in path.iterdir()):
        for p in path.iterdir():
            p.unlink()
        path.rmdir()


def _check_resumable(pipe: Pipeline, run: RunDir, allow: tuple[str, ...]) -> list[str]:
    """The sections (of ``allow``) in which ``pipe`` differs from the run's config; any other
    difference outside ``job`` is an error."""
    import yaml

    from pcdkit.core.pipeline import safe_yaml, validate, yaml_problem

    file = run.path / "config.yaml"
    try:
        before = safe_yaml(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PcdkitError(f"--resume {file}: unreadable ({exc})") from None
    except yaml.YAMLError as exc:
        raise PcdkitError(f"--resume {file}:{yaml_problem(exc)}") from None
    if not isinstance(before, dict) or not isinstance(before.get("job"), dict):
        raise PcdkitError(f"--resume {file}: not a pipeline written by pcdkit (expected a "
                          "mapping with a 'job' section)")
    now = pipe.resolved()
    # settings added since the run was made count at their defaults; a config that no longer
    # validates (a setting removed or moved) is compared as written, so it differs
    with contextlib.suppress(PcdkitError):
        before = validate(before).resolved()
    changed = [k for k in sorted(set(before) | set(now))
               if k not in ("job", "description") and before.get(k) != now.get(k)]
    if before.get("job", {}).get("plugin") != now["job"]["plugin"]:
        changed.append("job.plugin")
    refused = [k for k in changed if k not in allow or k == "job.plugin"]
    if refused:
        raise PcdkitError(f"--resume {run.path}: the pipeline differs from the run's config.yaml "
                          f"in {', '.join(refused)}; resume with the same pipeline, or name the "
                          "sections you mean to change: --allow-change SECTION")
    return changed
