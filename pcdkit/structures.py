"""Data structures shared by every part of pcdkit."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Mesh:
    """A triangle mesh: ``vertices`` (V, 3) float, ``faces`` (F, 3) long indices into vertices."""

    vertices: torch.Tensor
    faces: torch.Tensor

    def __post_init__(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[-1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {tuple(self.vertices.shape)}")
        if self.faces.ndim != 2 or self.faces.shape[-1] != 3:
            raise ValueError(f"faces must be (F, 3), got {tuple(self.faces.shape)}")

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Mesh:
        """Move (and optionally cast) the vertices; faces stay long."""
        return Mesh(self.vertices.to(device=device, dtype=dtype), self.faces.to(device=device))

    @property
    def triangles(self) -> torch.Tensor:
        """(F, 3, 3) corner coordinates of every face."""
        return self.vertices[self.faces]


@dataclass
class Shape:
    """One item of a point-cloud dataset: a name, a clean cloud and (when known) its mesh."""

    name: str
    points: torch.Tensor
    mesh: Mesh | None = None
