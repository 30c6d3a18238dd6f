"""The feature network of pcdkit's sample-quality score: a small MNIST classifier that pcdkit
trains itself (no downloaded Inception weights).

Architecture: conv 3x3 (1 -> 32) + ReLU + max-pool 2, conv 3x3 (32 -> 64) + ReLU + max-pool 2,
linear (1600 -> 128) + ReLU = the 128-d features, linear (128 -> 10) logits. The Frechet distance
of generated vs real digits is computed on the 128-d features ("FD-MNIST"); its scale is not
comparable with Inception-based FID.
"""

from __future__ import annotations

import torch
from torch import nn

from pcdkit.datasets.mnist import ImageSet


class DigitClassifier(nn.Module):
    """28 x 28 digits -> 10 logits; :meth:`features` gives the 128-d penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> (B, 128)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10)."""
        return self.head(self.body(x))


def train_classifier(data: ImageSet, *, epochs: int, generator: torch.Generator,
                     device: torch.device, batch_size: int = 128, lr: float = 1e-3,
                     holdout: float = 0.1) -> tuple[DigitClassifier, float]:
    """Train on all but a held-out share; returns (model in eval mode, held-out accuracy)."""
    n = len(data)
    order = torch.randperm(n, generator=generator)
    n_val = max(1, int(n * holdout))
    val, train = order[:n_val], order[n_val:]
    model = DigitClassifier().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = train[torch.randperm(len(train), generator=generator)]
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.cross_entropy(model(data.images[idx].to(device)),
                                               data.labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model, accuracy(model, data.images[val], data.labels[val], device)


@torch.no_grad()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor,
             device: torch.device) -> float:
    """Share of correctly classified images."""
    pred = torch.cat([model(images[i:i + 512].to(device)).argmax(1).cpu()
                      for i in range(0, len(images), 512)])
    return float((pred == labels).float().mean())


@torch.no_grad()
def features(model: DigitClassifier, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """128-d features of many images, in chunks."""
    return torch.cat([model.features(images[i:i + 512].to(device)).cpu()
                      for i in range(0, len(images), 512)])
