"""Registration: light module, implementations imported lazily by pcdkit."""

from __future__ import annotations

from pcdkit.plugin import Param, PluginSpec, hookimpl


@hookimpl
def pcdkit_corruptions() -> list[PluginSpec]:
    """The ``outliers`` corruption."""
    return [
        PluginSpec(
            "corruption", "outliers", "pcdkit_example.outliers:Outliers",
            doc="Replace a random fraction of points by uniform samples in the bounding box.",
            params=(Param("fraction", float, 0.05, "fraction of points replaced",
                          minimum=0.0, maximum=1.0),),
        )
    ]


@hookimpl
def pcdkit_metrics() -> list[PluginSpec]:
    """The ``f-score`` metric."""
    return [
        PluginSpec(
            "metric", "f-score", "pcdkit_example.fscore:FScore",
            doc="F-score at a distance threshold (higher is better).",
            params=(Param("threshold", float, 0.01, "distance threshold (unit-sphere frame)",
                          minimum=0.0),),
        )
    ]
