"""Benchmark: choosing each row's c smallest distances, ``torch.topk`` against pcdkit's two-level
selection (``pcdkit.geometry.knn.smallest_indices``).

Run: ``python benchmarks/knn_select.py [--repeats 10] [--threads 1]``. Inputs are the distance
matrices the torch kNN backend ranks in the score-denoise network's feature graphs: 8 patches of
1000 points in a 24-channel feature space (blocks 0-2 of the feature net, in training and in
denoising) and the 128 loss points of the last block against their patch, with c = 16 + 1 + 8
(k neighbours, the point itself, the exact re-ranking's margin). Both run in one process,
alternating; columns: best-of-``repeats`` milliseconds, speed-up over ``torch.topk``, and
whether both chose the same entries.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_ms

from pcdkit.geometry.knn import smallest_indices


def _features(gen: torch.Generator) -> torch.Tensor:
    """8 patches of 1000 points (ordered outwards from their seed, as patches are) mapped to a
    24-channel ReLU feature space: (8, 1000, 24)."""
    pts = torch.randn(8, 1000, 3, generator=gen)
    pts = pts / pts.norm(dim=-1, keepdim=True) * torch.rand(8, 1000, 1, generator=gen) ** (1 / 3)
    pts = torch.gather(pts, 1, pts.norm(dim=-1).argsort(-1)[..., None].expand(-1, -1, 3))
    noise = 0.1 * torch.randn(8, 1000, 24, generator=gen)
    return torch.relu(pts @ torch.randn(3, 24, generator=gen) + noise)


def main() -> None:
    """Print a Markdown table of selection times."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feat = _features(torch.Generator().manual_seed(0))
    c = 25
    cases = {
        "8 x 1000 x 1000 (feature blocks 0-2)": torch.cdist(feat, feat),
        "8 x 128 x 1000 (last block, loss points)": torch.cdist(feat[:, :128], feat),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), c = {c}\n")
    print("| distances | torch.topk ms | two-level ms | speed-up | same entries |")
    print("|---|---|---|---|---|")
    for name, d in cases.items():
        def topk(d: torch.Tensor = d) -> torch.Tensor:
            return d.topk(c, dim=-1, largest=False, sorted=False).indices

        def two_level(d: torch.Tensor = d) -> torch.Tensor:
            return smallest_indices(d, c)

        t_old, t_new = best_ms(topk, args.repeats), best_ms(two_level, args.repeats)
        same = torch.equal(topk().sort(-1).values, two_level().sort(-1).values)
        print(f"| {name} | {t_old:.1f} | {t_new:.1f} | {t_old / t_new:.2f}x | {same} |",
              flush=True)


if __name__ == "__main__":
    main()
