"""Built-in forward-operator plugins."""

from __future__ import annotations

from typing import Literal

from pcdkit.contracts import ForwardOperator
from pcdkit.plugin import Param, PluginSpec, hookimpl


@hookimpl
def pcdkit_operators() -> list[PluginSpec]:
    """subsample, gaussian."""
    return [
        PluginSpec(
            "operator", "subsample", "pcdkit.operators.points:Subsample",
            provides=(ForwardOperator,),
            doc="Observe a random fraction of the points (x4 upsampling at 0.25); each measured "
                "point pulls its nearest cloud point (Gaussian likelihood).",
            params=(
                Param("fraction", float, 0.25, "share of the points observed", minimum=0.0,
                      maximum=1.0),
                Param("sigma", float, 0.01, "likelihood std (unit-sphere frame); measurement "
                      "noise of the same std when measuring", minimum=0.0),
                Param("jitter", float, 0.5, "the start's new points are jittered by this many "
                      "mean spacings of the measurement", minimum=0.0),
                Param("start", Literal["jitter", "midpoints"], "jitter",
                      "new points start as copies of measured points or as midpoints "
                      "between measured neighbours"),
            ),
        ),
        PluginSpec(
            "operator", "gaussian", "pcdkit.operators.points:GaussianMeasurement",
            provides=(ForwardOperator,),
            doc="y = x + sigma * eps point by point: denoising with a known noise level.",
            params=(Param("sigma", float, 0.01, "noise std (unit-sphere frame)", minimum=0.0),),
        ),
    ]
