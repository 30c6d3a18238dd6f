"""Bilateral filtering of point clouds (Fleishman, Drori & Cohen-Or 2003, for points as in Digne &
de Franchis, IPOL 2017).

Each point p with unit normal n (local PCA of its ``k`` nearest points) moves along n by the
bilaterally weighted mean height of its neighbours above its tangent plane:

    p' = p + n * sum_q w_d(|q - p|) w_n(<n, q - p>) <n, q - p> / sum_q w_d w_n,

with Gaussian kernels w_d(x) = exp(-x^2 / 2 sigma_d^2) (spatial) and w_n(y) = exp(-y^2 / 2
sigma_n^2) (range: heights, which keeps points of the far side of an edge from pulling).
Settings are in the unit-sphere frame of the cloud (the cloud is normalised first, as the
evaluation protocol does); ``iterations`` repeats the filter with fresh normals.
"""

from __future__ import annotations

import torch

from pcdkit.errors import PcdkitError
from pcdkit.geometry.local_frames import neighbourhoods, pca_frames
from pcdkit.geometry.normalize import normalize_unit_sphere


def bilateral_filter(points: torch.Tensor, *, k: int = 30, sigma_d: float = 0.04,
                     sigma_n: float = 0.02, iterations: int = 1, backend: str = "auto"
                     ) -> torch.Tensor:
    """(N, 3) -> (N, 3): ``iterations`` passes of the point bilateral filter (module doc)."""
    if points.ndim != 2 or points.shape[-1] != 3 or points.shape[0] < k:
        raise PcdkitError(f"bilateral: needs an (N, 3) cloud of at least k={k} points, got "
                          f"{tuple(points.shape)}")
    x, tf = normalize_unit_sphere(points)
    for _ in range(iterations):
        nbrs = neighbourhoods(x, k, backend=backend)
        _, frames = pca_frames(nbrs)
        normal = frames[:, :, 2]
        rel = nbrs - x.unsqueeze(1)
        height = (rel * normal.unsqueeze(1)).sum(-1)  # (N, k)
        w = torch.exp(-rel.square().sum(-1) / (2 * sigma_d ** 2)
                      - height.square() / (2 * sigma_n ** 2))
        x = x + ((w * height).sum(1) / w.sum(1).clamp_min(1e-30)).unsqueeze(1) * normal
    return tf.invert(x)


class Bilateral:
    """The ``bilateral`` backbone."""

    def __init__(self, k: int, sigma_d: float, sigma_n: float, iterations: int,
                 backend: str) -> None:
        self.settings = dict(k=k, sigma_d=sigma_d, sigma_n=sigma_n, iterations=iterations,
                             backend=backend)

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """(N, 3) -> (N, 3) on the same device."""
        return bilateral_filter(points, **self.settings)
