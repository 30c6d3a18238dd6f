"""The metric plugin contract and the built-in metric objects."""

from __future__ import annotations

from typing import Any, Literal

import torch

from pcdkit.metrics.chamfer import chamfer_distance, hausdorff_distance
from pcdkit.metrics.p2m import point_mesh_distance
from pcdkit.structures import Mesh

#: what a metric compares the prediction with, and in which frame (see protocol.evaluate_shape):
#: "points" = ground-truth cloud, "mesh" = ground-truth mesh, "tensor" = same-shaped target
Frame = Literal["points", "mesh", "tensor"]


class Metric:
    """A metric plugin object: ``metric(pred, target) -> scalar tensor`` (lower is better)."""

    frame: Frame = "points"

    def __call__(self, pred: torch.Tensor, target: Any) -> torch.Tensor:
        """The metric value for one item."""
        raise NotImplementedError


class Chamfer(Metric):
    """Chamfer distance (pytorch3d convention by default; see chamfer_distance)."""

    frame = "points"

    def __init__(self, squared: bool, norm: int, direction: str, backend: str) -> None:
        self.kw = dict(squared=squared, norm=norm, direction=direction, backend=backend)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return chamfer_distance(pred, target, **self.kw)


class Hausdorff(Metric):
    """Hausdorff distance (Euclidean)."""

    frame = "points"

    def __init__(self, direction: str, backend: str) -> None:
        self.kw = dict(direction=direction, backend=backend)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hausdorff_distance(pred, target, **self.kw)


class P2M(Metric):
    """Point-to-mesh distance (pytorch3d point_mesh_face_distance convention, exact)."""

    frame = "mesh"

    def __init__(self, direction: str, min_triangle_area: float, backend: str) -> None:
        self.kw = dict(direction=direction, min_triangle_area=min_triangle_area, backend=backend)

    def __call__(self, pred: torch.Tensor, target: Mesh) -> torch.Tensor:
        return point_mesh_distance(pred, target, **self.kw)


class MSE(Metric):
    """Mean squared error between same-shaped tensors (mean over every element)."""

    frame = "tensor"

    def __init__(self, reduce_last_dim: bool) -> None:
        self.reduce_last_dim = reduce_last_dim

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"mse: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} differ in shape; MSE needs correspondences")
        err = (pred - target).square()
        return err.sum(-1).mean() if self.reduce_last_dim else err.mean()
