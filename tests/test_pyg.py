"""torch-geometric interop: clouds, meshes, datasets, batches, corruptions as transforms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_geometric", reason="pcdkit[pyg] not installed")

import pcdkit  # noqa: E402
from pcdkit.core import registry  # noqa: E402
from pcdkit.datasets.procedural import make_mesh  # noqa: E402
from pcdkit.geometry.backends import has_torch_cluster  # noqa: E402
from pcdkit.pyg import (  # noqa: E402
    CorruptionTransform,
    batch_to_clouds,
    clouds_to_batch,
    data_to_mesh,
    dataset_to_pyg,
    mesh_to_data,
)


def test_meshes_and_ragged_clouds_round_trip() -> None:
    mesh = make_mesh("torus")
    data = mesh_to_data(mesh)
    assert data.face.shape == (3, len(mesh.faces))
    back = data_to_mesh(data)
    assert torch.equal(back.faces, mesh.faces) and torch.equal(back.vertices, mesh.vertices)
    clouds = [torch.randn(n, 3) for n in (5, 9, 2)]
    batch = clouds_to_batch(clouds)
    assert batch.num_graphs == 3 and batch.pos.shape == (16, 3)
    assert all(torch.equal(a, b) for a, b in zip(batch_to_clouds(batch), clouds, strict=True))


def test_datasets_feed_pyg_data_loaders() -> None:
    from torch_geometric.loader import DataLoader

    ds = registry.create("dataset", "procedural", {"resolution": 100, "shapes": ["cube",
                                                                                 "torus"]})
    items = dataset_to_pyg(ds)
    assert items[1].name == "torus" and items[1].face.shape[0] == 3
    batch = next(iter(DataLoader(items, batch_size=2)))
    assert batch.num_graphs == 2 and batch.pos.shape == (200, 3)


def test_corruption_as_transform_keeps_the_clean_cloud() -> None:
    from torch_geometric.data import Data

    noise = registry.create("corruption", "gaussian", {"std": 0.02})
    transform = CorruptionTransform(noise, torch.Generator().manual_seed(0))
    clean = torch.randn(64, 3)
    out = transform(Data(pos=clean.clone()))
    assert torch.equal(out.clean_pos, clean) and not torch.equal(out.pos, clean)
    assert "Gaussian" in repr(transform)


def test_denoise_accepts_a_batch_of_clouds_of_different_sizes(checkpoint: Path) -> None:
    batch = clouds_to_batch([torch.randn(40, 3), torch.randn(25, 3)])
    out = pcdkit.denoise(batch, checkpoint=checkpoint, steps=1)
    assert out.num_graphs == 2 and out.pos.shape == (65, 3)
    assert torch.equal(out.batch, batch.batch) and not torch.equal(out.pos, batch.pos)


@pytest.mark.skipif(not has_torch_cluster(), reason="torch-cluster (PyG's knn/fps) not installed")
def test_pyg_knn_backend_matches_brute_force() -> None:
    from pcdkit.geometry.knn import knn

    pts = torch.randn(2, 300, 3)
    assert torch.equal(knn(pts, pts, 8, backend="pyg")[1], knn(pts, pts, 8, backend="torch")[1])
