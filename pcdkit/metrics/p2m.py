"""Point-to-mesh distance (P2M), exact point-to-triangle distances."""

from __future__ import annotations

from typing import Literal

import torch

from pcdkit.geometry.triangles import points_to_triangles, triangles_to_points
from pcdkit.structures import Mesh


def point_mesh_distance(
    points: torch.Tensor, mesh: Mesh, *, direction: Literal["both", "point_to_face"] = "both",
    min_triangle_area: float = 0.0, backend: str = "auto",
) -> torch.Tensor:
    """P2M of one (N, 3) cloud against a mesh, a scalar.

    ``both`` = pytorch3d's ``point_mesh_face_distance``: mean over points of the squared distance
    to the nearest triangle, plus mean over triangles of the squared distance to the nearest
    point. ``point_to_face`` keeps the first term only. ``min_triangle_area=0`` (default) is the
    exact distance; pytorch3d >= 0.7 defaults to 5e-3, which treats small triangles as their
    edges and inflates P2M on unit-sphere-normalised meshes (see the docs).
    """
    if backend == "pytorch3d":
        return _pytorch3d(points, mesh, direction, min_triangle_area)
    tris = mesh.triangles.to(points)
    out = points_to_triangles(points, tris, min_triangle_area, backend).mean()
    if direction == "both":
        out = out + triangles_to_points(tris, points, min_triangle_area, backend).mean()
    return out


def _pytorch3d(points: torch.Tensor, mesh: Mesh, direction: str, min_area: float) -> torch.Tensor:
    from pytorch3d.loss.point_mesh_distance import face_point_distance, point_face_distance

    tris = mesh.triangles.to(points)
    first = torch.zeros(1, dtype=torch.long, device=points.device)
    out = point_face_distance(points, first, tris, first, len(points), min_area).mean()
    if direction == "both":
        out = out + face_point_distance(points, first, tris, first, len(tris), min_area).mean()
    return out
