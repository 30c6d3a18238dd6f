"""The evaluation protocol of score-based point-cloud denoising, used by every job.

Per shape: Chamfer-type metrics normalise the ground-truth *cloud* to the unit sphere and apply
the same transform to the prediction; mesh metrics (P2M) normalise the *mesh vertices* and apply
that transform to the prediction. This is what the reference evaluation code does
(``chamfer_distance_unit_sphere`` and ``point_mesh_bidir_distance_single_unit_sphere``). Shapes
are then averaged; tables print values x 1e4 as the papers do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from pcdkit.errors import PcdkitError, PluginError
from pcdkit.geometry.normalize import normalize_unit_sphere
from pcdkit.structures import Mesh

TABLE_SCALE = 1e4
#: multipliers of the per-shape noise seeds (seed * m + shape index) of the two measuring
#: protocols; frozen, because published figures (README, campaign logs) depend on them
_SHAPE_NOISE = {"evaluate": 100003, "validation": 7919}


def shape_noise_generator(seed: int, index: int,
                          protocol: Literal["evaluate", "validation"]) -> torch.Generator:
    """The CPU generator that corrupts shape ``index`` under ``protocol`` (same noise on every
    device: draws are made on the CPU and moved)."""
    return torch.Generator().manual_seed(seed * _SHAPE_NOISE[protocol] + index)


def evaluate_shape(
    pred: torch.Tensor, metrics: Mapping[str, Any], *, gt: torch.Tensor | None = None,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """Apply every metric to one predicted cloud under the protocol; raw (unscaled) values.

    A metric that raises anything but a pcdkit error is reported as a :class:`PluginError`
    naming it (third-party metrics must not end the CLI in a bare traceback).
    """
    frames: dict[str, tuple[Any, torch.Tensor]] = {}  # reference and prediction per frame

    def framed(kind: str) -> tuple[Any, torch.Tensor]:
        if kind not in frames:
            if kind == "mesh":
                verts, tf = normalize_unit_sphere(mesh.vertices.to(pred))
                frames[kind] = (Mesh(verts, mesh.faces.to(pred.device)), tf.apply(pred))
            else:
                ref, tf = normalize_unit_sphere(gt.to(pred))
                frames[kind] = (ref, tf.apply(pred))
        return frames[kind]

    out: dict[str, float] = {}
    for name, metric in metrics.items():
        frame = getattr(metric, "frame", "points")
        if frame == "mesh" and mesh is None:
            raise ValueError(f"metric {name!r} needs a mesh, and this dataset item has none")
        if frame != "mesh" and gt is None:
            what = "tensor" if frame == "tensor" else "point cloud"
            raise ValueError(f"metric {name!r} needs a ground-truth {what}")
        try:
            if frame == "tensor":
                out[name] = float(metric(pred, gt))
            else:
                ref, moved = framed(frame)
                out[name] = float(metric(moved, ref))
        except PcdkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - a metric's own failure, named
            raise PluginError(f"metric {name!r} ({type(metric).__module__}) raised "
                              f"{type(exc).__name__}: {exc}") from exc
    return out


def summarize(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over shapes (rows may carry non-numeric keys such as 'shape'); a
    metric missing from some rows (a run resumed with more figures) is left out."""
    keys = [k for k, v in rows[0].items()
            if isinstance(v, (int, float)) and all(k in r for r in rows)] if rows else []
    return {k: sum(float(r[k]) for r in rows) / len(rows) for k in keys}
