"""Built-in head plugins."""

from __future__ import annotations

from pcdkit.contracts import HeadSet, TrainableHeads
from pcdkit.plugin import Param, PluginSpec, hookimpl


@hookimpl
def pcdkit_heads() -> list[PluginSpec]:
    """igo-score-denoise, igo-unet."""
    return [
        PluginSpec(
            "head", "igo-score-denoise", "pcdkit.heads.igo_score_denoise:IGOHeads",
            provides=(TrainableHeads,),
            doc="IGO intermediate encoder/decoder for score-denoise: copies of the first and "
                "last perceptron layers per tau, initialised to a fraction of the pretrained "
                "weights.",
            params=(
                Param("taus", list[float], [0.5], "intermediate fractions tau (of t)"),
                Param("init_scale", float, 0.5, "initial weights = init_scale x pretrained"),
            ),
        ),
            PluginSpec(
            "head", "igo-unet", "pcdkit.heads.igo_unet:IGOUNetHeads",
            provides=(HeadSet,),
            doc="IGO intermediate encoder/decoder for score-unet: E_tau conv 5x5 stride 2, "
                "D_tau transposed conv 6x6 stride 2, around the shared inner U-Net.",
            params=(Param("taus", list[float], [0.5], "intermediate fractions tau (of t)"),),
        ),
    ]
