"""Registration: light module, implementations imported lazily by pcdkit."""

from __future__ import annotations

from pathlib import Path

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


@hookimpl
def pcdkit_backbones() -> list[PluginSpec]:
    """The ``displacement`` denoiser (trainable by ``train-denoiser``)."""
    return [
        PluginSpec(
            "backbone", "displacement", "pcdkit_example.displacement:Displacement",
            doc="Learned per-point displacement from k-neighbour offsets (a small example of "
                "the TrainableDenoiser contract).",
            params=(
                Param("checkpoint", Path | None, None, "trained weights (model.pt of a "
                      "train-denoiser run); none: untrained", is_input=True),
                Param("k", int, 16, "neighbours per point", minimum=2),
                Param("width", int, 64, "hidden width of the MLP", minimum=1),
                Param("iterations", int, 1, "displacement steps when denoising", minimum=1),
            ),
        )
    ]
