"""The ``pcdkit`` command line: run, validate, schema, plugins."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pcdkit import __version__
from pcdkit.core.params import type_name
from pcdkit.errors import Interrupted, PcdkitError

EXIT_USAGE = 2
MAX_PASSES = 10
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error(message: str) -> int:
    """One ``pcdkit: error:`` message on stderr (terminal colour codes removed); exit code 2."""
    print(f"pcdkit: error: {_ANSI.sub('', message)}", file=sys.stderr)
    return EXIT_USAGE


def _warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
    print(f"pcdkit: warning: {_ANSI.sub('', str(message))}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from pcdkit.core import pipeline
    from pcdkit.core.runner import run_pipeline

    pipe = pipeline.load(args.pipeline, args.set)
    if args.resume and args.out:
        raise PcdkitError("--resume continues RUN_DIR in place; do not combine it with --out")
    if args.allow_change and not args.resume:
        raise PcdkitError("--allow-change only applies with --resume RUN_DIR")
    run, metrics = run_pipeline(pipe, out=args.out, root=args.root, quiet=args.quiet,
                                resume=args.resume, allow_changes=tuple(args.allow_change))
    print(f"run directory: {run.path}")
    table = run.path / "per_shape.md"
    if table.is_file():  # x 1e4, as the papers print
        print(table.read_text(encoding="utf-8"))
    summary = metrics.get("summary", metrics)
    print(json.dumps(summary, indent=2, default=str))
    print(f"report: {run.path / 'report.html'}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from pcdkit.core import pipeline

    pipe = pipeline.load(args.pipeline, args.set)
    print(f"{args.pipeline}: valid (job {pipe.job.spec.name!r})")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from pcdkit.core import pipeline

    print(json.dumps(pipeline.json_schema(), indent=2))
    return 0


def _cmd_plugins_list(args: argparse.Namespace) -> int:
    from pcdkit.core import registry

    rows = registry.list(args.kind)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    header = ("kind", "name", "distribution", "version", "status")
    table = [header] + [(r.kind, r.name, r.distribution, r.version, r.status) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_plugins_show(args: argparse.Namespace) -> int:
    from pcdkit.core import registry

    spec = registry.get(args.kind, args.name)
    print(f"{spec.kind} {spec.name!r} from {spec.distribution} {spec.version}".rstrip())
    if spec.doc:
        print(f"\n{spec.doc}")
    if spec.params:
        print("\nsettings:")
        for p in spec.params:
            default = "required" if p.required else f"default {p.default!r}"
            print(f"  {p.name}: {type_name(p.type)} ({default})\n      {p.doc}")
    if spec.slots:
        print("\npipeline sections:")
        for s in spec.slots:
            count = "list of " if s.many else ""
            need = "required" if s.required and s.default is None else f"default {s.default!r}"
            print(f"  {s.name}: {count}{s.kind} plugin ({need})\n      {s.doc}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from pcdkit.backbones.score_denoise.convert import convert_reference

    ckpt = convert_reference(args.src, args.dst, overwrite=args.overwrite)
    step = ckpt.extra["reference_step"]
    print(f"wrote {args.dst}: score-denoise, {ckpt.extra['parameters']:,} parameters, "
          f"reference step {'unknown' if step is None else step}")
    return 0


def _cmd_denoise(args: argparse.Namespace) -> int:
    import time

    import torch

    from pcdkit.core import registry
    from pcdkit.core.device import resolve_device
    from pcdkit.io import read_points, write_points
    from pcdkit.io.files import ensure_writable

    if not 1 <= args.passes <= MAX_PASSES:
        raise PcdkitError(f"--passes: expected 1 to {MAX_PASSES} (the reference uses 1, or 2 for "
                          f"3 % noise), got {args.passes}")
    folder = Path(args.input).is_dir()
    if folder:
        jobs = _folder_jobs(Path(args.input), Path(args.output))
    else:
        ensure_writable(args.output, args.overwrite, point_suffix=True)  # before the slow part
        jobs = [(Path(args.input), Path(args.output))]
    device = resolve_device(args.device)
    model = registry.create("backbone", "score-denoise", {  # other settings: plugin defaults
        "checkpoint": args.checkpoint, "allow_pickle": args.allow_pickle, "passes": args.passes,
        "preset": args.preset, "compiled_inference": args.compile})
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    for src, dst in jobs[rank::world]:  # under torchrun, each rank takes its own shard
        if folder and dst.exists():
            _say(f"rank {rank}: {dst} exists, skipped")
            continue
        start = time.perf_counter()
        points = read_points(src).to(device)
        out = model.denoise(points)
        if not torch.isfinite(out).all():
            raise PcdkitError(f"{src}: denoising produced non-finite coordinates; nothing "
                              "was written (is the cloud's scale extreme?)")
        write_points(dst, out, overwrite=args.overwrite)
        who = f"rank {rank}: " if world > 1 else ""
        seconds = time.perf_counter() - start
        _say(f"{who}denoised {len(points):,} points in {seconds:.1f} s -> {dst}")
    return 0


def _say(line: str) -> None:
    """Print one whole line in one write: torchrun ranks share stdout, and ``print`` writes the
    text and its newline separately when stdout is unbuffered, which can splice two ranks' lines."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _folder_jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs for every cloud file of ``src``, sorted; outputs keep the file name
    (a format pcdkit cannot write, .off, becomes .ply)."""
    from pcdkit.io.files import POINT_SUFFIXES, WRITE_SUFFIXES

    if dst.exists() and not dst.is_dir():
        raise PcdkitError(f"-o {dst}: a folder is denoised into a folder; this is a file")
    if dst.resolve() == src.resolve():
        raise PcdkitError(f"-o {dst}: must differ from the input folder (inputs are never "
                          "overwritten)")
    files = sorted(p for p in src.iterdir()
                   if p.is_file() and p.suffix.lower() in POINT_SUFFIXES)
    if not files:
        raise PcdkitError(f"{src}: no point-cloud files ({', '.join(POINT_SUFFIXES)})")
    dst.mkdir(parents=True, exist_ok=True)
    return [(f, dst / (f.name if f.suffix.lower() in WRITE_SUFFIXES else f"{f.name}.ply"))
            for f in files]


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from pcdkit import api
    from pcdkit.io.files import ensure_writable

    if not 0 <= args.noise <= 1:
        raise PcdkitError(f"--noise: expected a std in [0, 1] (fraction of the unit-sphere "
                          f"radius), got {args.noise}")
    if not 0 <= args.seed <= 2**32 - 1:
        raise PcdkitError(f"--seed: expected 0 to 2^32 - 1, got {args.seed}")
    ensure_writable(args.output, args.overwrite, point_suffix=True)
    points = api.sample(args.mesh, args.n, args.method, args.seed)
    if args.noise > 0:  # relative to the cloud's unit-sphere radius, as the corruptions
        radius = (points - points.mean(0)).norm(dim=1).max()
        gen = torch.Generator().manual_seed(args.seed + 1)
        points = points + args.noise * radius * torch.randn(points.shape, generator=gen)
    api.write(args.output, points, overwrite=args.overwrite)
    print(f"sampled {len(points):,} points ({args.method}) -> {args.output}")
    return 0


def _cmd_weights_fetch(args: argparse.Namespace) -> int:
    from pcdkit import weights

    path = weights.fetch(args.model, source=Path(args.source) if args.source else None,
                         url=args.url, quiet=not sys.stdout.isatty())
    release = weights.RELEASES[args.model]
    print(f"verified (SHA-256 {release.sha256[:12]}...), converted and cached: {path}\n"
          f"use it as checkpoint: {release.alias}\ncredit: {release.credit}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from pcdkit.io import read_points
    from pcdkit.io.files import ensure_writable
    from pcdkit.render import render_clouds

    if Path(args.output).suffix.lower() not in IMAGE_SUFFIXES:
        raise PcdkitError(f"{args.output}: expected an image file name ending in "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    ensure_writable(args.output, args.overwrite)
    clouds = [read_points(f) for f in args.clouds]
    titles = args.titles or [str(f) for f in args.clouds]
    if len(titles) != len(clouds):
        raise PcdkitError(f"--titles: {len(titles)} given for {len(clouds)} clouds")
    print(render_clouds(clouds, titles, args.output))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used for the docs)."""
    parser = argparse.ArgumentParser(prog="pcdkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pcdkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_pipeline(p: argparse.ArgumentParser) -> None:
        p.add_argument("pipeline", help="pipeline YAML file")
        p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override a setting (value parsed as YAML); repeatable")

    p = sub.add_parser("run", help="validate and run a pipeline")
    with_pipeline(p)
    p.add_argument("--out", help="run directory (must not exist or be empty)")
    p.add_argument("--root", default="runs", help="parent of default run directories")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted training run in RUN_DIR from its checkpoint")
    p.add_argument("--allow-change", action="append", default=[], metavar="SECTION",
                   help="with --resume: let this top-level section differ from the run's config "
                        "(e.g. datasets, to change the training data mid-run); repeatable")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="only validate a pipeline")
    with_pipeline(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of pipeline files")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("plugins", help="list or describe plugins")
    psub = p.add_subparsers(dest="plugins_command", required=True)
    q = psub.add_parser("list", help="installed plugins with their status")
    q.add_argument("--kind", help="only this kind")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_cmd_plugins_list)
    q = psub.add_parser("show", help="a plugin's settings")
    q.add_argument("kind")
    q.add_argument("name")
    q.set_defaults(func=_cmd_plugins_show)
    p = sub.add_parser("convert", help="convert a reference checkpoint to pcdkit's safe format")
    p.add_argument("model", choices=["score-denoise"], help="which reference model")
    p.add_argument("src", help="reference checkpoint (legacy pickle)")
    p.add_argument("dst", help="pcdkit checkpoint to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("denoise", help="denoise a point-cloud file or a folder of them")
    p.add_argument("input", help="point cloud (.xyz/.txt/.ply/.npy/.npz/.off), or a folder: "
                                 "every cloud in it (under torchrun, sharded across ranks)")
    p.add_argument("-o", "--output", required=True,
                   help="denoised cloud to write (a folder for a folder: same file names; "
                        "files already there are skipped, so a stopped batch resumes)")
    p.add_argument("--checkpoint", help="pcdkit checkpoint (default: the embedded one)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="unpickle arbitrary objects from the checkpoint (trusted files only)")
    p.add_argument("--passes", type=int, default=1,
                   help=f"denoising passes, 1 to {MAX_PASSES} (2 for 3%% noise)")
    p.add_argument("--preset", choices=["fast", "faithful"], default="fast",
                   help="fast: the products' arithmetic measured fastest on this machine "
                        "(float32, bfloat16, or int8: in pcdkit's fused kernel on AVX512-VNNI "
                        "CPUs, else when compiled), split feature graphs and brute-force "
                        "searches; faithful: the reference's float32 arithmetic (default: fast)")
    p.add_argument("--compile", action="store_true",
                   help="run the score network through torch.compile: a one-off compilation "
                        "(tens of seconds, cached on disk), then faster clouds; for folders and "
                        "large clouds")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_cmd_denoise)

    p = sub.add_parser("weights", help="released weights: download, verify, convert, cache")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    q = wsub.add_parser("fetch", help="fetch a released checkpoint into the user cache")
    q.add_argument("model", choices=["score-denoise"], help="which release")
    q.add_argument("--from", dest="source", metavar="FILE",
                   help="offline: a copy of the released file (verified the same way)")
    q.add_argument("--url", help="download from this address instead (a mirror)")
    q.set_defaults(func=_cmd_weights_fetch)

    p = sub.add_parser("sample", help="sample a point cloud on a mesh")
    p.add_argument("mesh", help="triangle mesh (.off/.ply/.npz)")
    p.add_argument("-o", "--output", required=True, help="cloud to write")
    p.add_argument("-n", type=int, default=10_000, help="exact number of points (10000)")
    p.add_argument("--method", choices=["poisson", "uniform"], default="poisson",
                   help="Poisson-disk (PU-Net protocol, default) or area-weighted uniform")
    p.add_argument("--noise", type=float, default=0.0,
                   help="Gaussian noise std, fraction of the unit-sphere radius (e.g. 0.01)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("render", help="PNG of point clouds side by side")
    p.add_argument("clouds", nargs="+", help="point-cloud files")
    p.add_argument("-o", "--output", required=True, help="PNG to write")
    p.add_argument("--titles", nargs="+", help="one title per cloud")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    p.set_defaults(func=_cmd_render)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pcdkit`` console script."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning  # one line per warning, no source location
            return args.func(args)
    except PcdkitError as exc:
        return _error(str(exc))
    except BrokenPipeError:  # the reader went away (`pcdkit plugins list | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except OSError as exc:  # unreadable input, read-only output folder, name too long, ...
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except RecursionError:
        return _error("input nested too deeply")
    except MemoryError:
        return _error("out of memory: the input is too large for this machine")
    except Interrupted as exc:  # a training run saved its state and stopped
        print(f"pcdkit: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("pcdkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
