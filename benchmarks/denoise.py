"""Benchmark: seconds to denoise one cloud with score-denoise at 10K, 50K and 200K points.

Run: ``python benchmarks/denoise.py [--checkpoint CKPT] [--sizes 10000 50000 200000]
[--device cpu|cuda] [--variant NAME:key=value,...]``. Clouds are Poisson-disk samples of the
embedded genus-2 shape with 2 % noise; each size is timed once per variant after a warm-up on a
small cloud (a 10K cloud already runs 900 score-network batches). Columns: seconds, seconds per
10K points, that value relative to the first size (near 1 = cost linear in N), and the time
relative to the first variant (the faithful settings) in the same process. Variant keys:
``seed_k`` (patches per 1000 points; faithful 3) and ``precision`` (float32 | bfloat16). The
public reference implementation needs about 100 s for one 10K cloud on this project's 2-core CPU
(shared/notes/dependencies.md).
"""

from __future__ import annotations

import argparse
import time

import torch

from pcdkit.backbones.score_denoise.backbone import load_network
from pcdkit.backbones.score_denoise.denoise import denoise_cloud
from pcdkit.core.device import resolve_device
from pcdkit.datasets.base import sample_surface
from pcdkit.datasets.procedural import make_mesh


def _variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, body = text.partition(":")
    return name, dict(kv.split("=", 1) for kv in body.split(",") if kv)


def main() -> None:
    """Print a Markdown table of denoising times."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default=None, help="pcdkit checkpoint (default: embedded)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--variant", action="append", type=_variant,
                    help="NAME:key=value,... (default: faithful only)")
    args = ap.parse_args()
    variants = args.variant or [("faithful", {})]
    device = resolve_device(args.device)
    net = load_network(args.checkpoint).to(device)
    mesh = make_mesh("genus2")
    denoise_cloud(net, sample_surface(mesh, 2000, "uniform", 0).to(device), steps=2)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| variant | points | seconds | seconds per 10K points | per point vs first size "
          "| time vs first variant |")
    print("|---|---|---|---|---|---|")
    per_point_at_first_size: dict[str, float] = {}
    for n in args.sizes:
        pts = sample_surface(mesh, n, "poisson", 1)
        radius = pts.norm(dim=-1).max()
        noisy = (pts + 0.02 * radius * torch.randn(pts.shape)).to(device)
        first = None
        for name, settings in variants:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            denoise_cloud(net, noisy, seed_k=float(settings.get("seed_k", 3)),
                          precision=settings.get("precision", "float32"))
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter() - start
            first = first or t
            per = t / n * 10_000
            base = per_point_at_first_size.setdefault(name, per)
            print(f"| {name} | {n:,} | {t:.1f} | {per:.2f} | {per / base:.2f} | "
                  f"{t / first:.2f} |", flush=True)


if __name__ == "__main__":
    main()
