"""Metrics between point clouds, meshes and tensors; every convention is stated in a docstring."""

from pcdkit.metrics.chamfer import chamfer_distance, hausdorff_distance
from pcdkit.metrics.p2m import point_mesh_distance
from pcdkit.metrics.protocol import evaluate_shape, summarize

__all__ = [
    "chamfer_distance",
    "evaluate_shape",
    "hausdorff_distance",
    "point_mesh_distance",
    "summarize",
]
