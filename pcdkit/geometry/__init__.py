"""Geometry: normalisation, mesh sampling, neighbour search, farthest-point sampling, patches,
thin-sheet measurement."""

from pcdkit.geometry.backends import available_backends
from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import knn, knn_indices
from pcdkit.geometry.normalize import UnitSphere, normalize_unit_sphere
from pcdkit.geometry.patches import extract_patches
from pcdkit.geometry.sampling import sample_mesh_poisson, sample_mesh_uniform
from pcdkit.geometry.sheets import near_sheet_share

__all__ = [
    "UnitSphere",
    "available_backends",
    "extract_patches",
    "farthest_point_sampling",
    "knn",
    "knn_indices",
    "near_sheet_share",
    "normalize_unit_sphere",
    "sample_mesh_poisson",
    "sample_mesh_uniform",
]
