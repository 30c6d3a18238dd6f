"""The supervised denoising score-matching loss of the reference, and its training patches."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from pcdkit.geometry.knn import gather_neighbours, knn_indices
from pcdkit.geometry.normalize import normalize_unit_sphere
from pcdkit.geometry.patches import patches_around

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
    corruption: Callable[..., Any] | None = None, taus: Sequence[float] = (),
) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
    """``num`` (noisy, clean, {tau: intermediate}) patch sets from one clean cloud.

    As the reference: the cloud is normalised to the unit sphere and gets Gaussian noise of std
    ~ U(noise_min, noise_max) -- or, when ``corruption`` is given, that process's final iterate
    and its iterates at ``taus`` (IGO) --, then a random scale in [1 - s, 1 + s] and random
    rotations about x, y and z. Each patch holds the ``patch_size`` nearest noisy (and
    intermediate) points and the ``patch_ratio * patch_size`` nearest clean points of a random
    noisy seed point.
    """
    pts, _ = normalize_unit_sphere(clean.float().cpu())
    inter: dict[float, torch.Tensor] = {}
    if corruption is None:
        std = float(_uniform(noise_min, noise_max, 1, gen))
        noisy = pts + std * torch.randn(pts.shape, generator=gen)
    else:
        out = corruption(pts.unsqueeze(0), generator=gen, taus=taus)
        noisy, inter = out.x_t[0], {t: x[0] for t, x in out.intermediates.items()}
    scale = float(_uniform(1 - scale_range, 1 + scale_range, 1, gen))
    rot = _rotation(_uniform(-math.pi, math.pi, 3, gen)) if rotate else torch.eye(3)
    pts, noisy = pts * scale @ rot, noisy * scale @ rot
    inter = {t: x * scale @ rot for t, x in inter.items()}
    seeds = noisy[torch.randperm(len(noisy), generator=gen)[:num]]
    k_noisy = min(patch_size, len(noisy))
    k_clean = min(int(patch_ratio * patch_size), len(pts))

    def patch(cloud: torch.Tensor, k: int) -> torch.Tensor:
        return patches_around(seeds, cloud, k, backend=backend)[0]

    return (patch(noisy, k_noisy), patch(pts, k_clean),
            {t: patch(x, k_noisy) for t, x in inter.items()})


def supervised_loss(
    net: ScoreDenoiseNet, noisy: torch.Tensor, clean: torch.Tensor, gen: torch.Generator, *,
    num_points: int = 128, frame_knn: int = 32, clean_neighbours: int = 4, sigma: float = 0.01,
    backend: str = "auto", encoder: torch.nn.Module | None = None,
    decoder: torch.nn.Conv1d | None = None,
) -> torch.Tensor:
    """0.5 * mean ||target - score||^2 / sigma over frames of ``num_points`` random points.

    For each random point, its frame is its ``frame_knn`` nearest noisy points; a frame point's
    target is ``-(x - mean of its clean_neighbours nearest clean points)``; the prediction is the
    score network at ``x - centre`` conditioned on the centre's feature. ``encoder`` /
    ``decoder`` replace the first / last layer (IGO's E_tau / D_tau for intermediate iterates).
    """
    B, N, _ = noisy.shape
    idx = torch.randperm(N, generator=gen)[:num_points].to(noisy.device)
    feat = net.feature_net(noisy, first=encoder, at=idx, split=True, fast_graphs=True)
    centres = noisy[:, idx]
    f_idx = knn_indices(centres, noisy, frame_knn, backend=backend)
    frames = gather_neighbours(noisy, f_idx)  # (B, n, K, 3)
    n = len(idx)
    # frames overlap (n * K = 4096 entries of N = 1000 points): each point's clean neighbours
    # are searched once and gathered per frame, the same targets at a quarter of the queries
    c_idx = knn_indices(noisy, clean, clean_neighbours, backend=backend)
    clean_mean = gather_neighbours(gather_neighbours(clean, c_idx).mean(-2), f_idx)
    target = -(frames - clean_mean)
    pred = net.score_net((frames - centres.unsqueeze(2)).reshape(B * n, frame_knn, 3),
                         feat.reshape(B * n, -1), last=decoder).reshape(B, n, frame_knn, 3)
    return 0.5 * ((target - pred).square() / sigma).sum(-1).mean()
