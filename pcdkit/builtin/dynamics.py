"""Built-in latent dynamics plugins."""

from __future__ import annotations

from typing import Literal

from pcdkit.plugin import Param, PluginSpec, hookimpl

_ODE = ("dopri5", "dopri8", "bosh3", "tsit5", "euler", "midpoint", "rk4")


def _common() -> tuple[Param, ...]:
    return (
        Param("latents", int, 13, "latent state size", minimum=1),
        Param("rec_dims", int, 20, "ODE-RNN encoder state size", minimum=1),
        Param("gru_units", int, 100, "hidden units of the encoder's GRU update", minimum=1),
        Param("units", int, 100, "hidden units of the dynamics MLP D", minimum=1),
        Param("obs_std", float, 1e-3, "std of the Gaussian likelihood", minimum=0.0),
        Param("n_z0", int, 3, "z0 samples per subject (best-of-K)", minimum=1),
        Param("method", Literal[_ODE], "rk4",
              "torchdiffeq solver of the generative ODE (rk4 on the data grid: reference)"),
        Param("rtol", float, 1e-5, "relative tolerance (adaptive solvers)", minimum=0.0),
        Param("atol", float, 1e-5, "absolute tolerance (adaptive solvers)", minimum=0.0),
        Param("adjoint", bool, False, "adjoint-method gradients (less memory, slower)"),
        Param("z0_std_scale", float, 1.0, "factor on q(z0)'s std (reference: 1; small "
              "values help the decoder tell subjects apart early)", minimum=0.0, maximum=1.0),
    )


@hookimpl
def pcdkit_dynamics() -> list[PluginSpec]:
    """me-node, node."""
    return [
        PluginSpec(
            "dynamics", "me-node", "pcdkit.dynamics.me_node:MixedEffectNODE",
            doc="Mixed-effect neural ODE (dz/dt = D(z) * w, learned q(w)); igo: true adds "
                "IGO's intermediate iterate (D(z_t, z_tau) with the alpha-weighted loss).",
            params=(*_common(),
                    Param("me_dim", int, 1, "mixed-effect size (1 or latents)", minimum=1),
                    Param("n_w", int, 3, "mixed-effect samples per subject", minimum=1),
                    Param("igo", bool, False, "IGO extension with an intermediate iterate"),
                    Param("igo_weights", bool, False,
                          "control for igo: no iterate, but the loss weights the frames at "
                          "tau t_i as IGO's does at initialisation"),
                    Param("tau", float, 0.5, "intermediate fraction tau (of t)"),
                    Param("alpha", float, 0.8, "IGO weight of the final iterate's loss",
                          minimum=0.0, maximum=1.0)),
        ),
        PluginSpec(
            "dynamics", "node", "pcdkit.dynamics.me_node:node",
            doc="Latent neural ODE baseline (dz/dt = D(z), no mixed effect).",
            params=_common(),
        ),
    ]
