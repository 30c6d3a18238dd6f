"""Benchmark: the merge's farthest-point sampling, the per-step neighbour search of denoising and
the gathers of neighbours, a baseline revision against today's.

Run (from a git checkout): ``python benchmarks/geometry.py [--baseline REV] [--repeats 5]``.
Inputs are what one 10K cloud's denoising hands these functions: FPS of 30,000 merged patch
points (three overlapping copies of a noisy 10K genus-2 cloud, jittered) back to 10,000, and the
4 nearest current points of each noisy point in a batch of 8 patches of 1000 points, and the
gathers that read neighbours' rows (the step's 4 offsets; a feature graph's 16 neighbours of 24
channels). All run in one process, one after the other; columns: median seconds, speed-up over
the baseline, and whether the result is identical.

Baseline: ``pcdkit/geometry/{fps,knn}.py`` at ``REV`` (default ``f7eb49e``: patches searched one
after the other, gathers by advanced indexing; ``6171657`` for session 16's levers, FPS with a
Python heap and a neighbour search that always recomputed distances).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from baseline import module_at

from pcdkit.datasets.base import sample_surface
from pcdkit.datasets.procedural import make_mesh
from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import gather_neighbours, knn_indices
from pcdkit.geometry.patches import extract_patches


def _median_time(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    times, out = [], fn()
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    """Print a Markdown table of the two operations' times."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", default="f7eb49e", help="git revision of the baseline")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_fps, old_knn = (module_at(args.baseline, f"pcdkit/geometry/{n}.py", f"baseline_{n}",
                                      Path(tmp)) for n in ("fps", "knn"))
    gen = torch.Generator().manual_seed(0)
    cloud = sample_surface(make_mesh("genus2"), 10_000, "poisson", 1)
    cloud = cloud / cloud.norm(dim=-1).max()
    noisy = cloud + 0.02 * torch.randn(cloud.shape, generator=gen)
    merged = torch.cat([noisy + 0.005 * torch.randn(noisy.shape, generator=gen)
                        for _ in range(3)])
    patches, _ = extract_patches(noisy, 8, 1000, backend="scipy")
    moved = patches + 0.01 * torch.randn(patches.shape, generator=gen)
    steps = knn_indices(patches, moved, 4, backend="scipy")
    features = torch.randn(8, 1000, 24, generator=gen)
    graph = torch.randint(0, 1000, (8, 1000, 16), generator=gen)
    cases = {
        "FPS 30,000 -> 10,000": (
            lambda: old_fps.farthest_point_sampling(merged, 10_000, backend="scipy"),
            lambda: farthest_point_sampling(merged, 10_000, backend="scipy")),
        "4-NN, 8 patches x 1000": (
            lambda: old_knn.knn(patches, moved, 4, backend="scipy")[1],
            lambda: knn_indices(patches, moved, 4, backend="scipy")),
        "gather 4 of 1000 points, 8 patches": (
            lambda: old_knn.gather_neighbours(moved, steps),
            lambda: gather_neighbours(moved, steps)),
        "gather 16 of 1000 x 24 channels, 8 patches": (
            lambda: old_knn.gather_neighbours(features, graph),
            lambda: gather_neighbours(features, graph)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    print("| operation | baseline s | today s | speed-up | identical |")
    print("|---|---|---|---|---|")
    for name, (before, today) in cases.items():
        (t_old, a), (t_new, b) = (_median_time(f, args.repeats) for f in (before, today))
        print(f"| {name} | {t_old:.4f} | {t_new:.4f} | {t_old / t_new:.2f}x | "
              f"{torch.equal(a, b)} |", flush=True)


if __name__ == "__main__":
    main()
