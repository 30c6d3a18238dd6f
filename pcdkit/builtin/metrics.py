"""Built-in metric plugins."""

from __future__ import annotations

from typing import Literal

from pcdkit.builtin import GeometryBackend
from pcdkit.plugin import Param, PluginSpec, hookimpl

_BACKEND = Param("backend", GeometryBackend, "auto",
                 "neighbour-search backend; auto = KD-tree on CPU, pytorch3d/torch on CUDA")


@hookimpl
def pcdkit_metrics() -> list[PluginSpec]:
    """Chamfer, point-to-mesh, Hausdorff and MSE."""
    return [
        PluginSpec(
            "metric", "chamfer", "pcdkit.metrics.base:Chamfer",
            doc="Chamfer distance: mean squared NN distance per direction, directions summed "
                "(pytorch3d chamfer_distance default). Exact.",
            params=(
                Param("squared", bool, True, "squared distances (pytorch3d default)"),
                Param("norm", Literal[1, 2], 2, "2 = Euclidean, 1 = L1 (pytorch3d norm=1)"),
                Param("direction", Literal["both", "pred_to_gt", "gt_to_pred"], "both",
                      "both directions summed, or one side only"),
                _BACKEND,
            ),
        ),
        PluginSpec(
            "metric", "p2m", "pcdkit.metrics.base:P2M",
            doc="Point-to-mesh distance: mean squared point->triangle distance plus mean squared "
                "triangle->point distance (pytorch3d point_mesh_face_distance), exact.",
            params=(
                Param("direction", Literal["both", "point_to_face"], "both",
                      "both terms (pytorch3d convention) or point->face only"),
                Param("min_triangle_area", float, 0.0,
                      "triangles at most this large count as edges only; 0 = exact, 5e-3 = "
                      "pytorch3d>=0.7 default", minimum=0.0),
                Param("backend", Literal["auto", "torch", "pytorch3d"], "auto",
                      "auto = KD-tree pruned exact search on CPU, brute force on CUDA"),
            ),
        ),
        PluginSpec(
            "metric", "hausdorff", "pcdkit.metrics.base:Hausdorff",
            doc="Hausdorff distance (Euclidean, not squared).",
            params=(
                Param("direction", Literal["both", "pred_to_gt", "gt_to_pred"], "both",
                      "symmetric, or one side only"),
                _BACKEND,
            ),
        ),
        PluginSpec(
            "metric", "mse", "pcdkit.metrics.base:MSE",
            doc="Mean squared error between same-shaped tensors (needs correspondences).",
            params=(Param("reduce_last_dim", bool, False,
                          "sum the last dimension before averaging (squared point distance)"),),
        ),
    ]
