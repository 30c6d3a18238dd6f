"""torch-geometric interop (``pip install pcdkit[pyg]``): clouds, meshes, datasets and
corruptions in PyG's terms.

A cloud is ``Data(pos=(N, 3))``, a mesh ``Data(pos=vertices, face=(3, F))`` (PyG's layout, faces
as columns), several clouds of different sizes a ``Batch``. Only PyG's pure-Python parts are
used, so none of this needs pyg-lib or torch-cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from pcdkit.corruptions.base import Corruption
from pcdkit.errors import PcdkitError
from pcdkit.structures import Mesh, Shape

try:
    from torch_geometric.data import Batch, Data
    from torch_geometric.transforms import BaseTransform
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("pcdkit.pyg needs torch-geometric: pip install 'pcdkit[pyg]'") from exc


def cloud_to_data(points: torch.Tensor) -> Data:
    """(N, 3) points -> ``Data(pos=points)``."""
    return Data(pos=torch.as_tensor(points, dtype=torch.float32))


def mesh_to_data(mesh: Mesh) -> Data:
    """A pcdkit mesh -> ``Data(pos=vertices (V, 3), face=(3, F))``."""
    return Data(pos=mesh.vertices, face=mesh.faces.T.contiguous())


def data_to_mesh(data: Data) -> Mesh:
    """``Data(pos, face)`` -> a pcdkit mesh (faces transposed back to (F, 3))."""
    if data.pos is None or getattr(data, "face", None) is None:
        raise PcdkitError("data_to_mesh: the Data object needs `pos` and `face`")
    return Mesh(data.pos, data.face.T.contiguous())


def shape_to_data(shape: Shape) -> Data:
    """A dataset item -> ``Data(pos=cloud, name=...)`` plus ``mesh_pos`` / ``face`` when the
    shape has a mesh (what the evaluation protocol's P2M needs)."""
    data = Data(pos=shape.points, name=shape.name)
    if shape.mesh is not None:
        data.mesh_pos, data.face = shape.mesh.vertices, shape.mesh.faces.T.contiguous()
    return data


def dataset_to_pyg(shapes: Iterable[Shape]) -> list[Data]:
    """Every shape of a pcdkit dataset as ``Data`` (a list PyG's ``DataLoader`` batches)."""
    return [shape_to_data(s) for s in shapes]


def clouds_to_batch(clouds: Sequence[torch.Tensor]) -> Batch:
    """Clouds of different sizes -> one ``Batch`` (``pos`` concatenated, ``batch`` vector)."""
    return Batch.from_data_list([cloud_to_data(c) for c in clouds])


def batch_to_clouds(batch: Any) -> list[torch.Tensor]:
    """A ``Batch`` (or ``Data`` with a ``batch`` vector) -> its clouds, in order."""
    pos = getattr(batch, "pos", None)
    if pos is None:
        raise PcdkitError("batch_to_clouds: the batch has no `pos` (point coordinates)")
    index = getattr(batch, "batch", None)
    if index is None:
        return [pos]
    counts = torch.bincount(index, minlength=int(batch.num_graphs)).tolist()
    return list(torch.split(pos, counts))


def with_clouds(batch: Any, clouds: Sequence[torch.Tensor]) -> Any:
    """A copy of ``batch`` whose ``pos`` holds ``clouds`` (same sizes, same order)."""
    out = batch.clone()
    out.pos = torch.cat(list(clouds))
    return out


class CorruptionTransform(BaseTransform):
    """A pcdkit corruption as a PyG transform: ``data.pos`` becomes the corrupted cloud and the
    clean one is kept as ``data.clean_pos`` (targets for supervised denoising)."""

    def __init__(self, corruption: Corruption, generator: torch.Generator | None = None
                 ) -> None:
        self.corruption = corruption
        self.generator = generator

    def forward(self, data: Data) -> Data:
        """Corrupt one ``Data`` object's ``pos``."""
        clean = data.pos
        data.clean_pos = clean
        data.pos = self.corruption(clean.unsqueeze(0), generator=self.generator).x_t[0]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.corruption).__name__})"
