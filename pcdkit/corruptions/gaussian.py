"""Isotropic Gaussian noise on point clouds, relative to the unit-sphere radius."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pcdkit.corruptions.base import Corrupted, Corruption, check_taus, randn_like
from pcdkit.geometry.normalize import normalize_unit_sphere


class GaussianNoise(Corruption):
    """x_t = x_0 + std * r * eps, where r is the cloud's unit-sphere radius (when ``relative``).

    The noise is the end point of a Brownian path: the iterate at fraction tau holds exactly the
    path's first ``tau`` of the variance (``x_tau = x_0 + std * r * W_tau``), so
    intermediate iterates are available at no extra cost. ``t`` is 1 for every sample.
    """

    def __init__(self, std: float, relative: bool = True) -> None:
        self.std = std
        self.relative = relative

    def __call__(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
        taus: Sequence[float] = (),
    ) -> Corrupted:
        taus = check_taus(taus)
        scale = torch.full_like(x0[..., :1, :1], self.std)
        if self.relative:
            scale = scale * normalize_unit_sphere(x0)[1].scale
        points = [0.0, *taus, 1.0]
        x, out = x0, {}
        for a, b in zip(points[:-1], points[1:], strict=True):
            x = x + scale * (b - a) ** 0.5 * randn_like(x0, generator)
            if b < 1.0:
                out[b] = x
        t = torch.ones(x0.shape[0] if x0.dim() == 3 else 1, device=x0.device)
        return Corrupted(x_t=x, t=t, intermediates=out)
