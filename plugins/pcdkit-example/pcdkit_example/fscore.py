"""F-score of a predicted cloud against the ground truth at a distance threshold."""

from __future__ import annotations

import torch

from pcdkit.metrics.chamfer import nearest_distances


class FScore:
    """2 P R / (P + R): P = share of predicted points within ``threshold`` of the ground truth,
    R = share of ground-truth points within ``threshold`` of the prediction."""

    frame = "points"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        t2 = self.threshold ** 2
        p = (nearest_distances(pred, gt) <= t2).double().mean()
        r = (nearest_distances(gt, pred) <= t2).double().mean()
        return torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(p))
