"""Built-in corruption plugins."""

from __future__ import annotations

from typing import Literal

from pcdkit.contracts import CorruptionProcess, SDEProcess
from pcdkit.plugin import Param, PluginSpec, hookimpl


def _time(t_min: float = 1e-3, t_max: float = 1.0, steps: int = 100) -> tuple[Param, ...]:
    return (
        Param("t_min", float, t_min, "smallest end time t (per sample, uniform)", minimum=0.0),
        Param("t_max", float, t_max, "largest end time t", minimum=0.0),
        Param("steps", int, steps, "Euler-Maruyama steps from 0 to t", minimum=1),
    )


@hookimpl
def pcdkit_corruptions() -> list[PluginSpec]:
    """gaussian, gaussian-ve, cat-map, lotka-volterra, pointcloud-em, swap-clean."""
    return [
        PluginSpec(
            "corruption", "gaussian", "pcdkit.corruptions.gaussian:GaussianNoise",
            provides=(CorruptionProcess,),
            doc="Isotropic Gaussian noise; intermediate iterates along its Brownian path.",
            params=(
                Param("std", float, 0.01, "noise std (fraction of the unit-sphere radius when "
                                          "relative)", minimum=0.0),
                Param("relative", bool, True, "scale std by each cloud's unit-sphere radius"),
            ),
        ),
        PluginSpec(
            "corruption", "gaussian-ve", "pcdkit.corruptions.processes:GaussianVE",
            provides=(SDEProcess,),
            doc="Variance-exploding SDE dx = sigma^t dW (closed-form marginals or simulated).",
            params=(Param("sigma", float, 25.0, "base of the diffusion sigma^t", minimum=1.0001),
                    Param("method", Literal["closed", "em"], "closed",
                          "exact marginals or Euler-Maruyama simulation"), *_time()),
        ),
        PluginSpec(
            "corruption", "cat-map", "pcdkit.corruptions.processes:CatMap",
            provides=(SDEProcess,),
            doc="Images drift towards their Arnold cat-map permutation; scaled Gaussian "
                "diffusion (IGO 4.1).",
            params=(Param("rate", float, 1.0, "drift rate towards the permuted image"),
                    Param("noise", float, 0.5, "diffusion scale (std per unit time at t = 0)",
                          minimum=0.0),
                    Param("sigma", float, 1.0, "diffusion grows as sigma^t (1: constant)",
                          minimum=1.0),
                    *_time()),
        ),
        PluginSpec(
            "corruption", "lotka-volterra", "pcdkit.corruptions.processes:LotkaVolterra",
            provides=(SDEProcess,),
            doc="Predator-prey drift on (..., 2) states with additive Gaussian diffusion.",
            params=(Param("alpha", float, 1.0, "prey growth"),
                    Param("beta", float, 0.4, "predation"),
                    Param("gamma", float, 0.8, "predator death"),
                    Param("delta", float, 0.2, "predator growth per prey"),
                    Param("noise", float, 0.05, "diffusion", minimum=0.0),
                    *_time(t_min=0.5, t_max=5.0, steps=200)),
        ),
        PluginSpec(
            "corruption", "pointcloud-em", "pcdkit.corruptions.processes:PointCloudEM",
            provides=(SDEProcess,),
            doc="Gaussian noise accumulated along the Euler-Maruyama path on point clouds "
                "(x_tau at tau = t/2 carries half the variance).",
            params=(Param("std", float, 0.02, "noise std at t = 1 (unit-sphere radius)",
                          minimum=0.0), *_time(t_min=1.0, t_max=1.0, steps=20)),
        ),
        PluginSpec(
            "corruption", "swap-clean", "pcdkit.corruptions.processes:SwapClean",
            provides=(CorruptionProcess,),
            doc="Noisy cloud; x_tau swaps a random share 1 - tau of its points for clean ones "
                "(the IGO authors' point-cloud variant).",
            params=(Param("std", float, 0.02, "noise std (unit-sphere radius)", minimum=0.0),),
        ),
    ]
