"""Patch-based denoising by gradient ascent on the learned score, as in the reference.

Per cloud: normalise to the unit sphere; pick ``int(seed_k * N / patch_size)`` farthest-point
seeds; each patch is the ``patch_size`` nearest points of a seed. Features are computed once per
patch on its noisy input. Each of ``steps`` iterations: every original noisy point finds its
``knn`` nearest points in the current patch, the score network predicts a score at each (as an
offset from the original point), the scores are scatter-added per current point, and
``x += step_size * decay**t * sum``. Patches are merged, farthest-point-sampled back to N and
un-normalised. All patches of a cloud run as batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pcdkit.backbones.score_denoise.model import Precision, ScoreDenoiseNet
from pcdkit.errors import PcdkitError
from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import gather_neighbours, knn_indices
from pcdkit.geometry.normalize import UnitSphere, normalize_unit_sphere
from pcdkit.geometry.patches import extract_patches


@torch.inference_mode()
def denoise_patches(
    net: ScoreDenoiseNet, patches: torch.Tensor, *, steps: int = 30, step_size: float = 0.2,
    decay: float = 0.95, neighbours: int = 4, backend: str = "auto",
    encoder: torch.nn.Module | None = None, decoder: torch.nn.Conv1d | None = None,
    precision: Precision = "float32", split_features: bool = False,
) -> torch.Tensor:
    """Gradient ascent on a batch of patches (P, K, 3) -> (P, K, 3).

    ``encoder`` / ``decoder`` replace the first / last layer (IGO's E_tau / D_tau pathway);
    ``precision`` as in :meth:`ScoreNet.forward`; ``split_features`` computes the features in
    the split layout of :meth:`DenseEdgeConv.forward` (same maths, rounded differently).
    """
    net.eval()
    P, K, _ = patches.shape
    feat = net.feature_net(patches, first=encoder, split=split_features,
                           backend=backend).reshape(P * K, -1)
    cond = net.score_net.condition(feat)  # once per patch, reused by every step
    x = patches.clone()
    for t in range(steps):
        idx = knn_indices(patches, x, neighbours, backend=backend)  # (P, K, n)
        offsets = gather_neighbours(x, idx) - patches.unsqueeze(2)
        score = net.score_net(offsets.reshape(P * K, neighbours, 3), feat, cond, last=decoder,
                              precision=precision)
        acc = torch.zeros_like(x).scatter_add_(
            1, idx.reshape(P, K * neighbours, 1).expand(-1, -1, 3),
            score.reshape(P, K * neighbours, 3))
        x += step_size * decay**t * acc
    return x


@dataclass(frozen=True)
class PatchContext:
    """What a score field reads from one cloud: its unit-sphere frame, overlapping patches
    (their points in that frame and their indices) and each patch's features and feature terms
    (:func:`patch_context`)."""

    frame: UnitSphere
    patches: torch.Tensor  # (P, K, 3) the frames' centres: the points read, normalised
    where: torch.Tensor  # (P, K) point indices of each patch
    feats: list[torch.Tensor]  # per batch of patches: (B * K, F)
    conds: list[list[torch.Tensor]]  # per batch: ScoreNet.condition(feats)
    batch_patches: int


@torch.inference_mode()
def patch_context(net: ScoreDenoiseNet, points: torch.Tensor, *, patch_size: int = 1000,
                  seed_k: float = 3, batch_patches: int = 8, backend: str = "auto",
                  encoder: torch.nn.Module | None = None) -> PatchContext:
    """Patches of ``points`` (N, 3) (``int(seed_k N / patch_size)`` FPS seeds) and their
    features, computed once and reusable for nearby clouds (:func:`score_with`); ``encoder``
    replaces the first layer (IGO's E_tau)."""
    normed, frame = normalize_unit_sphere(points)
    n_seeds = max(1, int(seed_k * len(normed) / patch_size))
    patches, where = extract_patches(normed, n_seeds, patch_size, backend=backend)
    feats, conds = [], []
    for s in range(0, len(patches), batch_patches):
        p = patches[s:s + batch_patches]
        feat = net.feature_net(p, first=encoder, backend=backend).reshape(
            -1, net.feature_net.out_channels)
        feats.append(feat)
        conds.append(net.score_net.condition(feat))
    return PatchContext(frame, patches, where, feats, conds, batch_patches)


@torch.inference_mode()
def score_with(net: ScoreDenoiseNet, context: PatchContext, points: torch.Tensor, *,
               neighbours: int = 4, backend: str = "auto", precision: Precision = "float32",
               decoder: torch.nn.Conv1d | None = None) -> torch.Tensor:
    """(N, 3) -> (N, 3): the displacement field at ``points`` (the cloud ``context`` was read
    from, or one near it, point for point) with the context's patches and features.

    As in one denoising step, every point read keeps its feature and its place as a frame
    centre; its ``neighbours`` nearest current points are scored as offsets from it, and each
    current point averages the scores it receives. Read and evaluated at the same cloud, this
    is :func:`score_field`. ``decoder`` replaces the output layer (IGO's D_tau).
    """
    normed = context.frame.apply(points)
    total = torch.zeros_like(normed)
    hits = torch.zeros(len(normed), dtype=normed.dtype, device=normed.device)
    step = context.batch_patches
    for b, (feat, cond) in enumerate(zip(context.feats, context.conds, strict=True)):
        rows = context.where[b * step:(b + 1) * step]
        p, centres = normed[rows], context.patches[b * step:(b + 1) * step]
        B, K, _ = p.shape
        idx = knn_indices(centres, p, neighbours, backend=backend)  # (B, K, n) current points
        offsets = gather_neighbours(p, idx) - centres.unsqueeze(2)
        score = net.score_net(offsets.reshape(B * K, neighbours, 3), feat, cond, last=decoder,
                              precision=precision)
        flat = idx.reshape(B, K * neighbours)
        acc = torch.zeros_like(p).scatter_add_(1, flat.unsqueeze(-1).expand(-1, -1, 3),
                                               score.reshape(B, K * neighbours, 3))
        count = torch.zeros(B, K, dtype=p.dtype, device=p.device).scatter_add_(
            1, flat, torch.ones_like(flat, dtype=p.dtype))
        total.index_add_(0, rows.reshape(-1), acc.reshape(-1, 3))
        hits.index_add_(0, rows.reshape(-1), count.reshape(-1))
    return total / hits.clamp_min(1).unsqueeze(1) * context.frame.scale.reshape(1, 1)


def score_field(
    net: ScoreDenoiseNet, points: torch.Tensor, *, patch_size: int = 1000, seed_k: float = 3,
    neighbours: int = 4, batch_patches: int = 8, backend: str = "auto",
    precision: Precision = "float32",
) -> torch.Tensor:
    """(N, 3) -> (N, 3): the network's estimate of each point's displacement towards the clean
    surface (sigma^2 grad log p_sigma by Tweedie), in the cloud's units.

    One step of the denoising scheme evaluated at the cloud itself: features and frames of
    overlapping patches of the current points, each point's scores from the frames it lies in,
    averaged (the denoiser sums them and scales by its step size).
    """
    context = patch_context(net, points, patch_size=patch_size, seed_k=seed_k,
                            batch_patches=batch_patches, backend=backend)
    return score_with(net, context, points, neighbours=neighbours, backend=backend,
                      precision=precision)


def _patch_denoise(net: ScoreDenoiseNet, pts: torch.Tensor, patch_size: int, seed_k: float,
                   batch: int, backend: str, **steps: float) -> torch.Tensor:
    N = pts.shape[0]
    n_seeds = max(1, int(seed_k * N / patch_size))
    patches, _ = extract_patches(pts, n_seeds, patch_size, backend=backend)
    out = torch.cat([denoise_patches(net, patches[s:s + batch], backend=backend, **steps)
                     for s in range(0, n_seeds, batch)])
    merged = out.reshape(-1, 3)
    return merged[farthest_point_sampling(merged, N, backend=backend)]


def min_points(net: ScoreDenoiseNet) -> int:
    """Fewest points a cloud (or patch) needs: the feature graphs' k neighbours plus itself."""
    return max(conv.k for conv in net.feature_net.convs) + 1


def _draw(weights: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One index (1,) drawn with probability proportional to ``weights`` (N,), any N."""
    if len(weights) <= MULTINOMIAL_MAX:
        return torch.multinomial(weights, 1, generator=gen)
    # torch.multinomial refuses more than 2^24 categories: invert the cumulative sum instead
    c = torch.cumsum(weights.double(), 0)
    u = torch.rand(1, generator=gen, dtype=torch.float64) * c[-1]
    return torch.searchsorted(c, u).clamp_max(len(weights) - 1)


MULTINOMIAL_MAX = 2 ** 24


def kmeans(points: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> torch.Tensor:
    """Cluster labels (N,) by Lloyd's algorithm from a k-means++ start, seeded."""
    gen = torch.Generator().manual_seed(seed)
    N = points.shape[0]
    centres = points[torch.randint(N, (1,), generator=gen)]
    for _ in range(1, k):
        d = torch.cdist(points, centres).amin(1).square()
        centres = torch.cat([centres, points[_draw(d.cpu(), gen)]])
    labels = torch.zeros(N, dtype=torch.long, device=points.device)
    for it in range(iters):
        new = torch.cdist(points, centres).argmin(1)
        if it > 0 and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=k).clamp_min(1).unsqueeze(1)
        centres = sums / counts
    return labels


@torch.inference_mode()
def denoise_cloud(
    net: ScoreDenoiseNet, points: torch.Tensor, *, passes: int = 1, patch_size: int = 1000,
    seed_k: float = 3, steps: int = 30, step_size: float = 0.2, decay: float = 0.95,
    neighbours: int = 4, batch_patches: int = 8, cluster_above: int = 50000,
    cluster_size: int = 30000, cluster_seed_k: float = 5, backend: str = "auto",
    encoder: torch.nn.Module | None = None, decoder: torch.nn.Conv1d | None = None,
    precision: Precision = "float32", split_features: bool = False,
) -> torch.Tensor:
    """Denoise one (N, 3) cloud; clouds above ``cluster_above`` points are split by k-means
    (a cluster too small for the network's neighbourhoods passes through unchanged)."""
    least = min_points(net)
    if points.ndim != 2 or points.shape[-1] != 3 or points.shape[0] < least:
        raise PcdkitError(f"score-denoise needs an (N, 3) cloud of at least {least} points "
                          f"(its feature graphs take {least - 1} neighbours), got "
                          f"{tuple(points.shape)}")
    kw = dict(steps=steps, step_size=step_size, decay=decay, neighbours=neighbours,
              encoder=encoder, decoder=decoder, precision=precision,
              split_features=split_features)
    if points.shape[0] > cluster_above:
        labels = kmeans(points, math.ceil(points.shape[0] / cluster_size))
        parts = []
        for c in range(int(labels.max()) + 1):
            part = points[labels == c]
            if len(part) < least:
                parts.append(part)
                continue
            normed, tf = normalize_unit_sphere(part)
            for _ in range(passes):
                normed = _patch_denoise(net, normed, patch_size, cluster_seed_k, batch_patches,
                                        backend, **kw)
            parts.append(tf.invert(normed))
        return torch.cat(parts)
    normed, tf = normalize_unit_sphere(points)
    for _ in range(passes):
        normed = _patch_denoise(net, normed, patch_size, seed_k, batch_patches, backend, **kw)
    return tf.invert(normed)
