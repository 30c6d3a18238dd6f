"""Chamfer and Hausdorff distances between point clouds, exact, via :func:`pcdkit.geometry.knn`."""

from __future__ import annotations

from typing import Literal

import torch

from pcdkit.geometry.knn import knn

Direction = Literal["both", "pred_to_gt", "gt_to_pred"]


def _batched(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(0) if x.dim() == 2 else x


def nearest_distances(
    x: torch.Tensor, y: torch.Tensor, norm: int = 2, backend: str = "auto"
) -> torch.Tensor:
    """For each point of ``x``, its distance to the nearest point of ``y`` (squared for norm 2)."""
    return knn(x, y, 1, norm=norm, backend=backend)[0][..., 0]


def chamfer_distance(
    pred: torch.Tensor, gt: torch.Tensor, *, squared: bool = True, norm: int = 2,
    direction: Direction = "both", backend: str = "auto",
) -> torch.Tensor:
    """Chamfer distance, (B,) for (B, N, 3) inputs or a scalar for (N, 3).

    Default = pytorch3d's ``chamfer_distance``: squared nearest-neighbour distances, averaged over
    the points of each cloud, the two directions summed. ``squared=False`` averages Euclidean
    distances instead; ``norm=1`` uses L1 distances (pytorch3d ``norm=1``); ``direction`` keeps
    one term only (``pred_to_gt`` = pytorch3d ``single_directional=True``).
    """
    p, g = _batched(pred), _batched(gt)
    total = p.new_zeros(p.shape[0])
    if direction in ("both", "pred_to_gt"):
        d = nearest_distances(p, g, norm, backend)
        total = total + (d if squared or norm == 1 else d.sqrt()).mean(-1)
    if direction in ("both", "gt_to_pred"):
        d = nearest_distances(g, p, norm, backend)
        total = total + (d if squared or norm == 1 else d.sqrt()).mean(-1)
    return total[0] if pred.dim() == 2 else total


def hausdorff_distance(
    pred: torch.Tensor, gt: torch.Tensor, *, direction: Direction = "both", backend: str = "auto"
) -> torch.Tensor:
    """Hausdorff distance (Euclidean, not squared): the largest nearest-neighbour distance."""
    p, g = _batched(pred), _batched(gt)
    parts = []
    if direction in ("both", "pred_to_gt"):
        parts.append(nearest_distances(p, g, 2, backend).amax(-1))
    if direction in ("both", "gt_to_pred"):
        parts.append(nearest_distances(g, p, 2, backend).amax(-1))
    out = torch.stack(parts).amax(0).sqrt()
    return out[0] if pred.dim() == 2 else out
