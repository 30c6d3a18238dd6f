"""Jet smoothing (Cazals & Pouget 2005, as CGAL's ``jet_smooth_point_set``).

For each point p: its ``k`` nearest points are expressed in their PCA frame with origin at p
(tangent coordinates u, v; height h along the normal); a polynomial height field h = J(u, v) of
total degree ``degree`` is fitted by least squares, and p is projected onto the jet:
p' = p + J(0, 0) * n. CGAL's defaults are ``degree_fitting`` 2 and 24 neighbours for real
scans. Batched over all points (one least-squares solve per point, no Python loop over points).
"""

from __future__ import annotations

import torch

from pcdkit.errors import PcdkitError
from pcdkit.geometry.local_frames import neighbourhoods, pca_frames
from pcdkit.geometry.normalize import normalize_unit_sphere


def _monomials(u: torch.Tensor, v: torch.Tensor, degree: int) -> torch.Tensor:
    """(..., k) coordinates -> (..., k, terms): u^i v^j for i + j <= degree, constant first."""
    return torch.stack([u ** (d - j) * v ** j for d in range(degree + 1) for j in range(d + 1)],
                       dim=-1)


def jet_smooth(points: torch.Tensor, *, k: int = 24, degree: int = 2, iterations: int = 1,
               backend: str = "auto") -> torch.Tensor:
    """(N, 3) -> (N, 3): each point projected onto its fitted jet (module doc)."""
    terms = (degree + 1) * (degree + 2) // 2
    if points.ndim != 2 or points.shape[-1] != 3 or points.shape[0] < max(k, terms):
        raise PcdkitError(f"jet: needs an (N, 3) cloud of at least {max(k, terms)} points, got "
                          f"{tuple(points.shape)}")
    if k < terms:
        raise PcdkitError(f"jet: a degree-{degree} fit has {terms} coefficients; k must be at "
                          f"least that, got {k}")
    x, tf = normalize_unit_sphere(points)
    for _ in range(iterations):
        nbrs = neighbourhoods(x, k, backend=backend)
        _, frames = pca_frames(nbrs)
        local = ((nbrs - x.unsqueeze(1)) @ frames).double()  # (N, k, 3): u, v, h
        # precondition: tangent coordinates scaled to O(1) per neighbourhood
        scale = local[..., :2].norm(dim=-1).amax(dim=1, keepdim=True).clamp_min(1e-12)
        design = _monomials(local[..., 0] / scale, local[..., 1] / scale, degree)
        coef = torch.linalg.lstsq(design, local[..., 2:]).solution  # (N, terms, 1)
        x = x + coef[:, 0].to(x.dtype) * frames[:, :, 2]
    return tf.invert(x)


class Jet:
    """The ``jet`` backbone."""

    def __init__(self, k: int, degree: int, iterations: int, backend: str) -> None:
        self.settings = dict(k=k, degree=degree, iterations=iterations, backend=backend)

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """(N, 3) -> (N, 3) on the same device."""
        return jet_smooth(points, **self.settings)
