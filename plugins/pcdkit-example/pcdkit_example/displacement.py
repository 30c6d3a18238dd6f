"""A small learned denoiser satisfying pcdkit's ``TrainableDenoiser`` contract.

Each point sees its ``k`` nearest neighbours as offsets from itself; a shared MLP over the
offsets, max- and mean-pooled, beside the neighbourhood's mean offset, predicts the point's
displacement towards the surface. Training regresses
the displacement to the nearest clean point; denoising applies the predicted displacement
``iterations`` times. Only torch and the public ``pcdkit.checkpoints`` are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pcdkit.checkpoints import load_checkpoint


def _neighbour_offsets(points: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N, 3) -> (B, N, k, 3): offsets of each point's k nearest neighbours (itself included)."""
    idx = torch.cdist(points, points).topk(k, dim=-1, largest=False).indices
    nbrs = torch.gather(points.unsqueeze(1).expand(-1, points.shape[1], -1, -1), 2,
                        idx.unsqueeze(-1).expand(-1, -1, -1, 3))
    return nbrs - points.unsqueeze(2)


class DisplacementNet(nn.Module):
    """Offsets of k neighbours -> per-point displacement; called on patches it is the loss."""

    def __init__(self, k: int = 16, width: int = 64) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width),
                                 nn.ReLU())
        self.output_layer = nn.Linear(2 * width + 3, 3)

    def displacement(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) -> (B, N, 3) predicted moves towards the surface."""
        offsets = _neighbour_offsets(points, self.k)
        feats = self.mlp(offsets)
        pooled = torch.cat([feats.amax(dim=2), feats.mean(dim=2), offsets.mean(dim=2)], -1)
        return self.output_layer(pooled)

    def forward(self, noisy: torch.Tensor, clean: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error of the displacement to each noisy point's nearest clean point."""
        nearest = torch.cdist(noisy, clean).argmin(dim=-1)
        target = torch.gather(clean, 1, nearest.unsqueeze(-1).expand(-1, -1, 3)) - noisy
        return (self.displacement(noisy) - target).pow(2).sum(-1).mean()


class Displacement:
    """The ``displacement`` backbone: trainable by ``train-denoiser``, usable by ``evaluate``."""

    checkpoint_model = "example-displacement"

    def __init__(self, checkpoint: Path | None, k: int, width: int, iterations: int) -> None:
        self.k, self.width, self.iterations = k, width, iterations
        self.net = self.network()
        if checkpoint is not None:
            ckpt = load_checkpoint(checkpoint)
            if ckpt.model != self.checkpoint_model:
                raise ValueError(f"{checkpoint}: a {ckpt.model!r} checkpoint")
            self.net.load_state_dict(ckpt.state_dict)
        self.net.eval()

    def network(self) -> DisplacementNet:
        """A fresh network to train."""
        return DisplacementNet(self.k, self.width)

    def config(self) -> dict[str, Any]:
        """What rebuilds the network."""
        return {"k": self.k, "width": self.width, "iterations": self.iterations}

    @torch.no_grad()
    def denoise_with(self, network: nn.Module, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, 3): the predicted displacement applied ``iterations`` times."""
        network = network.to(points.device).eval()
        x = points.unsqueeze(0)
        for _ in range(self.iterations):
            x = x + network.displacement(x)
        return x[0]

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """(N, 3) -> (N, 3) with the loaded weights."""
        return self.denoise_with(self.net, points)
