"""Every hook a pcdkit plugin can implement, one per plugin kind.

A plugin is a module (named by an entry point in the ``pcdkit`` group) holding functions marked
with :data:`hookimpl`. Each hook returns a list of :class:`pcdkit.plugin.PluginSpec` of its kind.
The built-in plugins use these same hooks and are declared in pcdkit's own ``setup.cfg``.

Hooks must be cheap: return specs, do not import heavy libraries (the spec's ``factory`` may be a
``"module:attribute"`` string that is imported only when the plugin is used).
"""

from __future__ import annotations

import pluggy

PROJECT = "pcdkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def pcdkit_backbones() -> list:
    """Score-based denoiser backbones (``kind='backbone'``): networks scoring noisy data."""


@hookspec
def pcdkit_heads() -> list:
    """Intermediate-iterate heads (``kind='head'``): IGO's E_tau / D_tau attached to a backbone."""


@hookspec
def pcdkit_dynamics() -> list:
    """Latent dynamics models (``kind='dynamics'``): neural ODEs, mixed-effect neural ODEs."""


@hookspec
def pcdkit_metrics() -> list:
    """Metrics (``kind='metric'``): Chamfer, point-to-mesh, Hausdorff, MSE, ..."""


@hookspec
def pcdkit_corruptions() -> list:
    """Corruption processes (``kind='corruption'``), optionally returning intermediate iterates."""


@hookspec
def pcdkit_datasets() -> list:
    """Datasets (``kind='dataset'``): sequences of shapes, trajectories or images."""


@hookspec
def pcdkit_operators() -> list:
    """Forward operators (``kind='operator'``): how a measurement is made from a clean cloud and
    its log-likelihood, for posterior sampling (inverse problems)."""


@hookspec
def pcdkit_jobs() -> list:
    """Jobs (``kind='job'``): train / denoise / evaluate / extrapolate / generate."""


#: plugin kind -> name of the hook that registers plugins of that kind
HOOK_OF_KIND = {
    "backbone": "pcdkit_backbones",
    "head": "pcdkit_heads",
    "dynamics": "pcdkit_dynamics",
    "metric": "pcdkit_metrics",
    "corruption": "pcdkit_corruptions",
    "dataset": "pcdkit_datasets",
    "operator": "pcdkit_operators",
    "job": "pcdkit_jobs",
}
KINDS = tuple(HOOK_OF_KIND)
