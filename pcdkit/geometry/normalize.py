"""Unit-sphere normalisation (bounding-box centre, max radius 1) as an invertible transform."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pcdkit.structures import Mesh


@dataclass
class UnitSphere:
    """``x -> (x - center) / scale``; ``center`` (..., 1, 3), ``scale`` (..., 1, 1)."""

    center: torch.Tensor
    scale: torch.Tensor

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """Map points into the normalised frame."""
        return (points - self.center) / self.scale

    def invert(self, points: torch.Tensor) -> torch.Tensor:
        """Map normalised points back to the original frame."""
        return points * self.scale + self.center

    def apply_mesh(self, mesh: Mesh) -> Mesh:
        """The same transform applied to a mesh's vertices (unbatched transforms only)."""
        return Mesh(self.apply(mesh.vertices), mesh.faces)


def normalize_unit_sphere(points: torch.Tensor, radius: float = 1.0) -> tuple[torch.Tensor,
                                                                              UnitSphere]:
    """Centre (N, 3) or (B, N, 3) points on their bounding-box centre, scale to max radius."""
    hi = points.amax(dim=-2, keepdim=True)
    lo = points.amin(dim=-2, keepdim=True)
    center = (hi + lo) / 2
    scale = (points - center).norm(dim=-1, keepdim=True).amax(dim=-2, keepdim=True) / radius
    scale = scale.clamp_min(torch.finfo(points.dtype).tiny)
    tf = UnitSphere(center, scale)
    return tf.apply(points), tf
