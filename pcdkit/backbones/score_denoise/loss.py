"""The supervised denoising score-matching loss of the reference, and its training patches."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from pcdkit.geometry.knn import gather_neighbours, knn
from pcdkit.geometry.normalize import normalize_unit_sphere

if TYPE_CHECKING:
    from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet


def _uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rotations about x, then y, then z by the given angles (radians), (3, 3)."""
    out = torch.eye(3)
    for axis, a in enumerate(angles.tolist()):
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != axis]
        r = torch.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, s, -s, c
        out = out @ r
    return out


def make_training_patches(
    clean: torch.Tensor, gen: torch.Generator, *, num: int, patch_size: int = 1000,
    patch_ratio: float = 1.2, noise_min: float = 0.005, noise_max: float = 0.02,
    scale_range: float = 0.2, rotate: bool = True, backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` (noisy, clean) patch pairs from one clean cloud, as the reference builds them.

    The cloud is normalised to the unit sphere, gets Gaussian noise of std ~ U(noise_min,
    noise_max), a random scale in [1 - s, 1 + s] and random rotations about x, y and z; each
    patch is the ``patch_size`` noisy and ``patch_ratio * patch_size`` clean nearest points of a
    random noisy seed point.
    """
    pts, _ = normalize_unit_sphere(clean.float().cpu())
    std = float(_uniform(noise_min, noise_max, 1, gen))
    noisy = pts + std * torch.randn(pts.shape, generator=gen)
    scale = float(_uniform(1 - scale_range, 1 + scale_range, 1, gen))
    pts, noisy = pts * scale, noisy * scale
    if rotate:
        rot = _rotation(_uniform(-math.pi, math.pi, 3, gen))
        pts, noisy = pts @ rot, noisy @ rot
    seeds = noisy[torch.randperm(len(noisy), generator=gen)[:num]]
    k_noisy = min(patch_size, len(noisy))
    k_clean = min(int(patch_ratio * patch_size), len(pts))
    _, i_noisy = knn(seeds, noisy, k_noisy, backend=backend)
    _, i_clean = knn(seeds, pts, k_clean, backend=backend)
    return noisy[i_noisy], pts[i_clean]


def supervised_loss(
    net: ScoreDenoiseNet, noisy: torch.Tensor, clean: torch.Tensor, gen: torch.Generator, *,
    num_points: int = 128, frame_knn: int = 32, clean_neighbours: int = 4, sigma: float = 0.01,
    backend: str = "auto",
) -> torch.Tensor:
    """0.5 * mean ||target - score||^2 / sigma over frames of ``num_points`` random points.

    For each random point, its frame is its ``frame_knn`` nearest noisy points; a frame point's
    target is ``-(x - mean of its clean_neighbours nearest clean points)``; the prediction is the
    score network at ``x - centre`` conditioned on the centre's feature.
    """
    B, N, _ = noisy.shape
    idx = torch.randperm(N, generator=gen)[:num_points].to(noisy.device)
    feat = net.feature_net(noisy)[:, idx]  # (B, n, F)
    centres = noisy[:, idx]
    _, f_idx = knn(centres, noisy, frame_knn, backend=backend)
    frames = gather_neighbours(noisy, f_idx)  # (B, n, K, 3)
    n = len(idx)
    _, c_idx = knn(frames.reshape(B, n * frame_knn, 3), clean, clean_neighbours,
                   backend=backend)
    clean_mean = gather_neighbours(clean, c_idx).mean(-2).reshape(B, n, frame_knn, 3)
    target = -(frames - clean_mean)
    pred = net.score_net((frames - centres.unsqueeze(2)).reshape(B * n, frame_knn, 3),
                         feat.reshape(B * n, -1)).reshape(B, n, frame_knn, 3)
    return 0.5 * ((target - pred).square() / sigma).sum(-1).mean()
