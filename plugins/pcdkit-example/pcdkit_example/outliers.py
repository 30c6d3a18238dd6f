"""Outlier corruption: a fraction of the points is replaced by uniform noise in the bounding box."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pcdkit.corruptions import Corrupted, Corruption


class Outliers(Corruption):
    """x_t keeps ``1 - fraction`` of the points; the rest are uniform in the bounding box."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def __call__(self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
                 taus: Sequence[float] = ()) -> Corrupted:
        dev = generator.device if generator is not None else x0.device
        lo, hi = x0.amin(-2, keepdim=True), x0.amax(-2, keepdim=True)
        u = torch.rand(x0.shape, generator=generator, device=dev, dtype=x0.dtype).to(x0.device)
        pick = torch.rand(x0.shape[:-1], generator=generator, device=dev).to(x0.device)
        mask = (pick < self.fraction).unsqueeze(-1)
        x_t = torch.where(mask, lo + u * (hi - lo), x0)
        return Corrupted(x_t=x_t, t=torch.ones(1, device=x0.device))
