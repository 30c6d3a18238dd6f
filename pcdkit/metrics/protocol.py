"""The evaluation protocol of score-based point-cloud denoising, used by every job.

Per shape: Chamfer-type metrics normalise the ground-truth *cloud* to the unit sphere and apply
the same transform to the prediction; mesh metrics (P2M) normalise the *mesh vertices* and apply
that transform to the prediction. This is what the reference evaluation code does
(``chamfer_distance_unit_sphere`` and ``point_mesh_bidir_distance_single_unit_sphere``). Shapes
are then averaged; tables print values x 1e4 as the papers do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pcdkit.geometry.normalize import normalize_unit_sphere
from pcdkit.structures import Mesh

TABLE_SCALE = 1e4


def evaluate_shape(
    pred: torch.Tensor, metrics: Mapping[str, Any], *, gt: torch.Tensor | None = None,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """Apply every metric to one predicted cloud under the protocol; raw (unscaled) values."""
    out: dict[str, float] = {}
    gt_frame = mesh_frame = None
    for name, metric in metrics.items():
        frame = getattr(metric, "frame", "points")
        if frame == "tensor":
            if gt is None:
                raise ValueError(f"metric {name!r} needs a ground-truth tensor")
            out[name] = float(metric(pred, gt))
        elif frame == "mesh":
            if mesh is None:
                raise ValueError(f"metric {name!r} needs a mesh, and this dataset item has none")
            if mesh_frame is None:
                verts, tf = normalize_unit_sphere(mesh.vertices.to(pred))
                mesh_frame = (Mesh(verts, mesh.faces.to(pred.device)), tf.apply(pred))
            out[name] = float(metric(mesh_frame[1], mesh_frame[0]))
        else:
            if gt is None:
                raise ValueError(f"metric {name!r} needs a ground-truth point cloud")
            if gt_frame is None:
                ref, tf = normalize_unit_sphere(gt.to(pred))
                gt_frame = (ref, tf.apply(pred))
            out[name] = float(metric(gt_frame[1], gt_frame[0]))
    return out


def summarize(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over shapes (rows may carry non-numeric keys such as 'shape')."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))] if rows else []
    return {k: sum(float(r[k]) for r in rows) / len(rows) for k in keys}
