"""Two forward operators: a random subset of the points (upsampling) and Gaussian noise
(denoising with a known noise level).

Both likelihoods are Gaussian in the measured coordinates with std ``sigma``:
- ``subsample``: y is a random ``fraction`` of the clean points (plus optional noise); each
  measured point is explained by its nearest point of x, so
  log p(y | x) = -sum_j |y_j - x_nn(j)|^2 / (2 sigma^2), whose gradient pulls those nearest
  points onto the measurement;
- ``gaussian``: y = x + sigma * eps point by point, log p(y | x) = -|y - x|^2 / (2 sigma^2).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from pcdkit.errors import PcdkitError
from pcdkit.geometry.knn import knn, knn_indices


def midpoints(y: torch.Tensor, points: int) -> torch.Tensor | None:
    """(M, 3) -> (points, 3): y, then midpoints of y with its nearest neighbours (nearest
    first) until ``points`` points; None when y has too few points to reach that many."""
    k = math.ceil(points / len(y)) - 1  # neighbours per point needed
    if k + 1 > len(y):
        return None
    idx = knn_indices(y, y, k + 1)
    mids = [(y + y[idx[:, j]]) / 2 for j in range(1, k + 1)]
    return torch.cat([y, *mids])[:points]


class Subsample:
    """Observe a random ``fraction`` of the points (noise std ``sigma``, relative to the
    unit-sphere radius as the evaluation protocol's noise)."""

    def __init__(self, fraction: float, sigma: float, jitter: float,
                 start: Literal["jitter", "midpoints"] = "jitter") -> None:
        if not 0.0 < fraction <= 1.0:
            raise PcdkitError(f"operator.fraction: expected a value in (0, 1], got {fraction}")
        self.fraction, self.sigma, self.jitter, self.start = fraction, sigma, jitter, start

    def measure(self, clean: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """A random ``ceil(fraction * N)`` points of ``clean`` (N, 3), with noise if sigma > 0."""
        n = max(1, math.ceil(self.fraction * len(clean)))
        keep = torch.randperm(len(clean), generator=generator)[:n].to(clean.device)
        y = clean[keep]
        if self.sigma > 0:
            radius = (clean - clean.mean(0)).norm(dim=1).amax()
            noise = torch.randn(y.shape, generator=generator).to(y.device)
            y = y + self.sigma * radius * noise
        return y

    def grad_log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each measured point pulls its nearest cloud point: sum_j (y_j - x_nn(j)) / sigma^2."""
        nn = knn_indices(y, x, 1)
        pull = (y - x[nn[:, 0]]) / max(self.sigma, 1e-4) ** 2
        return torch.zeros_like(x).index_add_(0, nn[:, 0], pull)

    def initial(self, y: torch.Tensor, points: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """(points, 3): the measured points, then new ones jittered by ``jitter`` times the mean
        nearest-neighbour spacing: copies of measured points (``start: jitter``) or midpoints
        between measured neighbours (``start: midpoints``)."""
        spacing = knn(y, y, 2)[0][:, 1].sqrt().mean()
        if self.start == "midpoints":
            base = midpoints(y, points)
            if base is None:
                raise PcdkitError(f"operator subsample: {len(y)} measured points are too few "
                                  f"for midpoints up to {points} points; use start: jitter")
        else:
            base = y[torch.arange(points, device=y.device) % len(y)]
        noise = torch.randn(points, 3, generator=generator).to(y.device)
        x = base + self.jitter * spacing * noise
        x[: len(y)] = y[: min(len(y), points)]  # the measurement itself is kept exactly once
        return x


class GaussianMeasurement:
    """y = x + sigma * r * eps (r: the unit-sphere radius), point by point."""

    def __init__(self, sigma: float) -> None:
        if sigma <= 0:
            raise PcdkitError(f"operator.sigma: expected a positive noise std, got {sigma}")
        self.sigma = sigma

    def measure(self, clean: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """``clean`` plus Gaussian noise of std sigma * radius."""
        radius = (clean - clean.mean(0)).norm(dim=1).amax()
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        return clean + self.sigma * radius * noise

    def grad_log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(y - x) / sigma^2 (the sampler's frame is the unit sphere: sigma as given)."""
        if x.shape != y.shape:
            raise PcdkitError(f"operator gaussian: the cloud {tuple(x.shape)} and the "
                              f"measurement {tuple(y.shape)} must match point by point")
        return (y - x) / self.sigma ** 2

    def initial(self, y: torch.Tensor, points: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """The measurement itself."""
        if points != len(y):
            raise PcdkitError(f"operator gaussian: recovers as many points as measured "
                              f"({len(y)}), not {points}")
        return y.clone()
