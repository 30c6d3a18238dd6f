"""Patch extraction: FPS seeds and their nearest neighbours."""

from __future__ import annotations

import torch

from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import knn


def extract_patches(
    points: torch.Tensor, num_patches: int, patch_size: int, *, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches (B, P, K, 3) and their point indices (B, P, K) around P FPS seeds.

    Accepts (N, 3) or (B, N, 3); each patch holds the ``patch_size`` nearest points of its seed
    (the seed first).
    """
    single = points.dim() == 2
    pts = points.unsqueeze(0) if single else points
    k = min(patch_size, pts.shape[1])
    seeds = farthest_point_sampling(pts, num_patches, backend=backend)
    seed_pts = torch.gather(pts, 1, seeds.unsqueeze(-1).expand(-1, -1, pts.shape[-1]))
    _, idx = knn(seed_pts, pts, k, backend=backend)
    b = torch.arange(pts.shape[0], device=pts.device)[:, None, None]
    patches = pts[b, idx]
    return (patches[0], idx[0]) if single else (patches, idx)
