"""Benchmark: exact Chamfer, P2M and kNN on CPU, pcdkit's default backend against baselines.

Run: ``python benchmarks/metrics.py [--repeats 5]``. Each cell is the median wall time of
repeated runs in this one process; ratios are baseline / pcdkit. Baselines: brute force
(chunked ``torch.cdist``, the same algorithm as pytorch3d's CPU kernels), SciPy ``cKDTree`` for
nearest neighbours, and pytorch3d itself when importable.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from pcdkit.datasets.base import sample_surface
from pcdkit.datasets.procedural import make_mesh
from pcdkit.geometry import knn, normalize_unit_sphere
from pcdkit.geometry.backends import has_pytorch3d
from pcdkit.metrics import chamfer_distance, point_mesh_distance
from pcdkit.structures import Mesh


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scipy_chamfer(x: torch.Tensor, y: torch.Tensor) -> float:
    """Chamfer with two cKDTree queries (the 'within 2x of SciPy' reference)."""
    from scipy.spatial import cKDTree

    a, b = x.numpy(), y.numpy()
    d1 = cKDTree(b).query(a, k=1, workers=-1)[0]
    d2 = cKDTree(a).query(b, k=1, workers=-1)[0]
    return float((d1**2).mean() + (d2**2).mean())


def main() -> None:
    """Print the benchmark table as Markdown."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-brute", action="store_true", help="skip the slow brute-force rows")
    args = ap.parse_args()
    torch.manual_seed(0)
    mesh = make_mesh("genus2")
    verts, _ = normalize_unit_sphere(mesh.vertices)
    mesh = Mesh(verts, mesh.faces)
    clouds = {n: sample_surface(mesh, n, "uniform", n) for n in (10_000, 50_000)}
    noisy = {n: c + 0.01 * torch.randn(c.shape) for n, c in clouds.items()}
    # a ~5K-face mesh for P2M: the superquadric (6,240 faces), normalised
    sq = make_mesh("superquadric-pillow")
    sq = Mesh(normalize_unit_sphere(sq.vertices)[0], sq.faces)
    sq_pts = sample_surface(sq, 50_000, "uniform", 1) + 0.01 * torch.randn(50_000, 3)

    rows: list[tuple[str, str, float, dict[str, float]]] = []

    def row(task: str, ours: Callable, baselines: dict[str, Callable], reps: int) -> None:
        t = timed(ours, reps)
        base = {}
        for name, fn in baselines.items():
            slow = name.startswith("brute") or name == "pytorch3d"
            if slow and args.skip_brute:
                continue
            base[name] = timed(fn, 1 if slow else reps)
        rows.append((task, "pcdkit (auto)", t, base))

    for n in (10_000, 50_000):
        x, y = noisy[n], clouds[n]
        base = {"scipy cKDTree": lambda x=x, y=y: scipy_chamfer(x, y),
                "brute force (torch.cdist)": lambda x=x, y=y: chamfer_distance(
                    x, y, backend="torch")}
        if has_pytorch3d():
            from pytorch3d.loss import chamfer_distance as p3d_cd

            base["pytorch3d"] = lambda x=x, y=y: p3d_cd(x[None], y[None])
        row(f"Chamfer {n // 1000}K vs {n // 1000}K", lambda x=x, y=y: chamfer_distance(x, y),
            base, args.repeats)
    base = {"brute force (torch)": lambda: point_mesh_distance(sq_pts, sq, backend="torch")}
    if has_pytorch3d():
        base["pytorch3d"] = lambda: point_mesh_distance(sq_pts, sq, backend="pytorch3d")
    row(f"P2M 50K vs {len(sq.faces)}-face mesh", lambda: point_mesh_distance(sq_pts, sq), base,
        max(1, args.repeats // 2))
    for k in (16, 32):
        x = noisy[50_000]
        base = {"scipy cKDTree": lambda x=x, k=k: knn(x, x, k, backend="scipy"),
                "brute force (torch.cdist)": lambda x=x, k=k: knn(x, x, k, backend="torch")}
        if has_pytorch3d():
            base["pytorch3d"] = lambda x=x, k=k: knn(x, x, k, backend="pytorch3d")
        # the default picks cKDTree on CPU, so the two columns measure the same kernel here
        row(f"kNN k={k}, 50K", lambda x=x, k=k: knn(x, x, k), base, args.repeats)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
          f"{args.repeats}\n")
    print("| task | pcdkit (s) | baseline | baseline (s) | baseline / pcdkit |")
    print("|---|---|---|---|---|")
    for task, _, t, base in rows:
        for i, (name, b) in enumerate(base.items()):
            first = f"| {task} | {t:.3f}" if i == 0 else "| | "
            print(f"{first} | {name} | {b:.3f} | {b / t:.1f}x |")


if __name__ == "__main__":
    main()
