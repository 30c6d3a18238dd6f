"""Benchmark: seconds and peak memory to denoise one cloud with score-denoise at 10K, 50K, 200K.

Run: ``python benchmarks/denoise.py [--checkpoint CKPT] [--sizes 10000 50000 200000]
[--device cpu|cuda] [--variant NAME:key=value,...]``. A variant is a set of ``score-denoise``
plugin settings (``preset``, ``matmul_precision``, ``seed_k``, ``batch_patches``, ``steps``,
...; values read as YAML), built through the plugin registry exactly as pipelines build it; the
default compares the two presets, ``faithful`` first. Clouds are Poisson-disk samples of the
embedded genus-2 shape with 2 % noise; each size is timed once per variant after a warm-up on a
small cloud (a 10K cloud already runs 900 score-network batches); ``--repeats N`` times every
variant N times, the variants alternating, and reports the median (two single runs of the same
variant on the idle 2-core VM differed by up to 12 %).

Columns: seconds; seconds per 10K points and that value relative to the first size (near 1 =
cost linear in N); time relative to the first variant in the same process; the process's peak
resident memory while the variant ran (sampled every 2 ms from /proc; empty elsewhere); the
hidden products' arithmetic the variant resolved to on this device. The public reference
implementation needs about 100 s for one 10K cloud on this project's 2-core CPU
(shared/notes/dependencies.md). ``--profile N`` runs each variant once more per size under
cProfile and prints the N pcdkit functions with the most cumulative time (where a cloud's
seconds go: products, neighbour search, feature graphs, farthest-point sampling).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from pcdkit.core import registry
from pcdkit.core.device import resolve_device
from pcdkit.datasets.base import sample_surface
from pcdkit.datasets.procedural import make_mesh

STATM = Path("/proc/self/statm")


def _variant(text: str) -> tuple[str, dict[str, object]]:
    name, _, body = text.partition(":")
    pairs = (kv.split("=", 1) for kv in body.split(",") if kv)
    return name, {k: yaml.safe_load(v) for k, v in pairs}


def _rss() -> int:
    """Resident bytes of this process (0 where /proc is missing)."""
    try:
        return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Yields a one-item list holding, on exit, the peak resident bytes seen meanwhile."""
    peak, stop = [_rss()], threading.Event()

    def poll() -> None:
        while not stop.wait(0.002):
            peak[0] = max(peak[0], _rss())

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _rss())


def main() -> None:
    """Print a Markdown table of denoising times and peak memory."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default=None, help="pcdkit checkpoint (default: embedded)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed runs per size and variant, alternating (median reported)")
    ap.add_argument("--variant", action="append", type=_variant,
                    help="NAME:key=value,... (default: faithful:preset=faithful and "
                         "fast:preset=fast)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after the timings, profile each variant once per size: top N functions")
    args = ap.parse_args()
    variants = args.variant or [("faithful", {"preset": "faithful"}), ("fast", {"preset": "fast"})]
    device = resolve_device(args.device)
    models = [(name, registry.create("backbone", "score-denoise",
                                     {"checkpoint": args.checkpoint, **settings}))
              for name, settings in variants]
    mesh = make_mesh("genus2")
    warm = sample_surface(mesh, 2000, "uniform", 0).to(device)
    for _, model in models:
        model.denoise(warm)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| variant | products | points | seconds | seconds per 10K points | per point vs first "
          "size | time vs first variant | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    per_point_at_first_size: dict[str, float] = {}
    for n in args.sizes:
        pts = sample_surface(mesh, n, "poisson", 1)
        radius = pts.norm(dim=-1).max()
        noise = torch.randn(pts.shape, generator=torch.Generator().manual_seed(n))
        noisy = (pts + 0.02 * radius * noise).to(device)
        times: dict[str, list[float]] = {name: [] for name, _ in models}
        peaks: dict[str, int] = dict.fromkeys(times, 0)
        for _ in range(args.repeats):
            for name, model in models:
                t, peak = _timed(model, noisy, device)
                times[name].append(t)
                peaks[name] = max(peaks[name], peak)
        first = None
        for name, model in models:
            t = statistics.median(times[name])
            first = first or t
            per = t / n * 10_000
            base = per_point_at_first_size.setdefault(name, per)
            mb = f"{peaks[name] / 2**20:,.0f}" if peaks[name] else ""
            print(f"| {name} | {model.precision_for(device)} | {n:,} | {t:.1f} | {per:.2f} | "
                  f"{per / base:.2f} | {t / first:.2f} | {mb} |", flush=True)
        if args.profile:
            for name, model in models:
                print(f"\ncProfile, {name}, {n:,} points:\n"
                      f"{_profiled(model, noisy, args.profile)}")


def _timed(model: object, noisy: torch.Tensor, device: torch.device) -> tuple[float, int]:
    """Seconds to denoise ``noisy`` once and the peak resident bytes meanwhile."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    with peak_rss() as peak:
        start = time.perf_counter()
        model.denoise(noisy)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter() - start
    return t, peak[0]


def _profiled(model: object, noisy: torch.Tensor, top: int) -> str:
    """The ``top`` pcdkit functions by cumulative time while ``model`` denoises ``noisy``."""
    prof = cProfile.Profile()
    prof.runcall(model.denoise, noisy)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats("pcdkit", top)
    return out.getvalue().split("\n", 6)[-1]  # drop pstats' header lines


if __name__ == "__main__":
    main()
