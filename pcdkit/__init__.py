"""pcdkit: a plugin-based PyTorch toolkit for score-based point-cloud denoising and dynamics.

Public API (imported on first use, so ``import pcdkit`` stays light):
``read``, ``read_mesh``, ``write``, ``sample``, ``denoise``, ``chamfer``, ``p2m``, ``run``;
the plugin registry is :mod:`pcdkit.core.registry`, pipelines :mod:`pcdkit.core.pipeline`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["chamfer", "denoise", "p2m", "read", "read_mesh", "run", "sample", "write"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pcdkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'pcdkit' has no attribute {name!r}")
