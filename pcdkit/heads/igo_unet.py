"""IGO heads for the image score U-Net (IGO paper 4.1).

Per intermediate fraction tau: E_tau is a 5x5 convolution with stride 2 (1 -> c1 channels,
28 -> 12 pixels) in place of the U-Net's first two blocks, D_tau a 6x6 transposed convolution with
stride 2 (2 c1 -> 1 channels, 12 -> 28 pixels) in place of its last two; the inner U-Net s_tau is
shared. The intermediate generator ``E_tau o s_tau o D_tau`` scores x_tau at its own time tau * t.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pcdkit.backbones.score_unet import ScoreUNet
from pcdkit.heads.base import IGOHeadSet


class IGOUNetHeads(IGOHeadSet):
    """E_tau / D_tau pairs for a :class:`ScoreUNet`, one per tau."""

    def __init__(self, backbone: ScoreUNet, taus: Sequence[float]) -> None:
        c1 = backbone.channels[1]
        super().__init__(taus, {t: nn.Conv2d(1, c1, 5, stride=2, bias=False) for t in taus},
                         {t: nn.ConvTranspose2d(2 * c1, 1, 6, stride=2) for t in taus})
