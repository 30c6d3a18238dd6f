"""How much of a surface lies close to another sheet of itself (thin walls, rods, gaps)."""

from __future__ import annotations

import torch

from pcdkit.geometry.knn import knn
from pcdkit.geometry.sampling import face_areas
from pcdkit.structures import Mesh


def near_sheet_share(mesh: Mesh, within: float, samples: int = 20000, neighbours: int = 64,
                     seed: int = 0) -> float:
    """Share of the surface (by area) with another sheet closer than ``within`` along its normal.

    Area-uniform samples p with face normals n; a neighbour q (of the ``neighbours`` nearest)
    is on another sheet when it lies mostly along n, ``|(q - p) . n| > 0.8 |q - p|``: on one
    smooth sheet, nearby points lie in the tangent plane. Orientation-free (marching meshes
    need not be consistently wound). ``within`` is in the mesh's units.
    """
    gen = torch.Generator().manual_seed(seed)
    tri = mesh.triangles.double()
    face = torch.multinomial(face_areas(mesh).double(), samples, replacement=True, generator=gen)
    w = torch.rand(samples, 2, generator=gen, dtype=torch.float64)
    w = torch.where(w.sum(-1, keepdim=True) > 1, 1 - w, w)  # uniform on the triangle
    t = tri[face]
    p = t[:, 0] + w[:, :1] * (t[:, 1] - t[:, 0]) + w[:, 1:] * (t[:, 2] - t[:, 0])
    n = torch.nn.functional.normalize(torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]),
                                      dim=-1)
    dist2, idx = knn(p, p, min(neighbours, samples))
    dist = dist2.clamp_min(0).sqrt()
    along = ((p[idx] - p[:, None]) * n[:, None]).sum(-1).abs()
    across = (along > 0.8 * dist) & (dist > 0) & (dist < within)
    return float(across.any(dim=1).double().mean())
