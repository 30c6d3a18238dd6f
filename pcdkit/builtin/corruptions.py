"""Built-in corruption plugins."""

from __future__ import annotations

from pcdkit.plugin import Param, PluginSpec, hookimpl


@hookimpl
def pcdkit_corruptions() -> list[PluginSpec]:
    """Gaussian noise."""
    return [
        PluginSpec(
            "corruption", "gaussian", "pcdkit.corruptions.gaussian:GaussianNoise",
            doc="Isotropic Gaussian noise; intermediate iterates along its Brownian path.",
            params=(
                Param("std", float, 0.01, "noise std (fraction of the unit-sphere radius when "
                                          "relative)", minimum=0.0),
                Param("relative", bool, True, "scale std by each cloud's unit-sphere radius"),
            ),
        ),
    ]
