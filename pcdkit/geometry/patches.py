"""Patch extraction: FPS seeds and their nearest neighbours."""

from __future__ import annotations

import torch

from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import knn_indices


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
    patches, idx = patches_around(seed_pts, pts, k, backend=backend)
    return (patches[0], idx[0]) if single else (patches, idx)


def patches_around(seeds: torch.Tensor, cloud: torch.Tensor, k: int, *, backend: str = "auto"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of ``cloud`` around each seed: (S, 3), (N, 3) -> (S, k, 3) and
    indices (S, k); batched (B, S, 3), (B, N, 3) -> (B, S, k, 3), (B, S, k)."""
    idx = knn_indices(seeds, cloud, k, backend=backend)
    if cloud.dim() == 2:
        return cloud[idx], idx
    b = torch.arange(cloud.shape[0], device=cloud.device)[:, None, None]
    return cloud[b, idx], idx
