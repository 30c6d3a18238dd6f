"""Built-in backbone plugins."""

from __future__ import annotations

from pcdkit.plugin import PluginSpec, hookimpl


@hookimpl
def pcdkit_backbones() -> list[PluginSpec]:
    """identity."""
    return [
        PluginSpec("backbone", "identity", "pcdkit.backbones.identity:Identity",
                   doc="Returns its input: scores the corrupted input itself (baseline)."),
    ]
