"""Local PCA frames of point neighbourhoods: normals and tangent planes, batched."""

from __future__ import annotations

import torch

from pcdkit.geometry.knn import knn_indices


def neighbourhoods(points: torch.Tensor, k: int, *, backend: str = "auto") -> torch.Tensor:
    """(N, 3) -> (N, k, 3): each point's ``k`` nearest points (itself first)."""
    idx = knn_indices(points, points, k, backend=backend)
    return points[idx]


def pca_frames(nbrs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, k, 3) neighbourhoods -> (centroids (N, 3), frames (N, 3, 3)).

    ``frames[:, :, 0]`` and ``[:, :, 1]`` span the tangent plane (largest, second variance);
    ``frames[:, :, 2]`` is the normal (least variance), unoriented. Computed in float64: the
    3 x 3 covariances of dense, nearly flat neighbourhoods are close to singular.
    """
    x = nbrs.double()
    centroid = x.mean(dim=1)
    d = x - centroid.unsqueeze(1)
    cov = d.transpose(1, 2) @ d / nbrs.shape[1]
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    frames = vecs.flip(-1)  # largest first: (t1, t2, n)
    return centroid.to(nbrs.dtype), frames.to(nbrs.dtype)
