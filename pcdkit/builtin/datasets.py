"""Built-in dataset plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pcdkit.plugin import Param, PluginSpec, hookimpl

_RES = Param("resolution", int, 10000, "points per cloud", minimum=1)
_SAMPLER = Param("sampler", Literal["poisson", "uniform"], "poisson",
                 "Poisson-disk (PU-Net protocol) or area-weighted uniform surface sampling")
_SHAPES = Param("shapes", list[str] | None, None, "subset of shape names (default: all)")


@hookimpl
def pcdkit_datasets() -> list[PluginSpec]:
    """procedural, punet, mesh-folder."""
    return [
        PluginSpec(
            "dataset", "procedural", "pcdkit.datasets.procedural:procedural",
            doc="Embedded shapes (platonic solids, torus, superquadrics, genus-2) as meshes; "
                "clouds sampled at the requested resolution. Needs no files.",
            params=(_SHAPES, _RES, _SAMPLER, Param("seed", int, 0, "sampling seed")),
        ),
        PluginSpec(
            "dataset", "punet", "pcdkit.datasets.folders:punet",
            doc="PU-Net layout: <root>/pointclouds/<split>/<res>_poisson/*.xyz and "
                "<root>/meshes/<split>/*.off.",
            params=(
                Param("root", Path, doc="dataset root folder", is_input=True),
                Param("split", Literal["train", "test"], "test", "which split"),
                _RES, _SHAPES,
                Param("meshes", bool, True, "load the meshes (needed for P2M)"),
            ),
        ),
        PluginSpec(
            "dataset", "mesh-folder", "pcdkit.datasets.folders:mesh_folder",
            doc="Any folder of meshes (.off/.ply/.npz); clouds sampled and cached by content "
                "hash.",
            params=(
                Param("root", Path, doc="folder of meshes", is_input=True),
                _RES, _SAMPLER, Param("seed", int, 0, "sampling seed"), _SHAPES,
                Param("cache_dir", Path | None, None,
                      "cache folder (default $PCDKIT_CACHE or ~/.cache/pcdkit)"),
                Param("cache", bool, True, "cache sampled clouds on disk"),
            ),
        ),
    ]
