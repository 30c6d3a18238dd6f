"""Frechet distance between two Gaussians fitted to feature sets (the FID formula)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg

from pcdkit.errors import PcdkitError


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of (N, D) feature sets.

    With fewer samples than dimensions the covariances are singular and the estimate is biased
    upwards; compare values computed with the same sample counts only.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise PcdkitError(f"frechet distance: expected (N, D) feature sets with the same D, got "
                          f"{tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) < 2 or len(b) < 2:
        raise PcdkitError("frechet distance: need at least 2 samples per set")
    x, y = a.detach().double().cpu().numpy(), b.detach().double().cpu().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    with warnings.catch_warnings():  # few samples give singular covariances: handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_x @ cov_y)
        if not np.isfinite(root).all():  # regularise as the FID reference code does
            eye = np.eye(len(cov_x)) * 1e-6
            root = linalg.sqrtm((cov_x + eye) @ (cov_y + eye))
    root = np.real(root)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y)
                 - 2 * np.trace(root))


def frechet_interval(a: torch.Tensor, b: torch.Tensor, *, resamples: int = 200,
                     level: float = 0.95, generator: torch.Generator | None = None
                     ) -> tuple[float, float, float]:
    """(FD, low, high): the Frechet distance of ``a`` (generated) to ``b`` (real) and a
    percentile bootstrap interval over resamples of ``a`` with replacement (the real set is
    held fixed: the interval is the sampling uncertainty of the generated set)."""
    if not 0.0 < level < 1.0:
        raise PcdkitError(f"frechet interval: level must lie in (0, 1), got {level}")
    values = []
    for _ in range(resamples):
        pick = torch.randint(len(a), (len(a),), generator=generator)
        values.append(frechet_distance(a[pick], b))
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return frechet_distance(a, b), float(lo), float(hi)
