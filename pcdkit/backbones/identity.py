"""The identity backbone: returns its input (the noisy-input baseline of every table)."""

from __future__ import annotations

import torch


class Identity:
    """``denoise(x) = x``."""

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Return the input unchanged."""
        return points
