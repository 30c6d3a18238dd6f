"""Dataset plugins: procedural shapes, PU-Net layout, mesh folders with a content-hash cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pcdkit.core import registry
from pcdkit.errors import PcdkitError
from pcdkit.geometry import near_sheet_share
from pcdkit.io import read_mesh, write_points


def test_procedural_dataset_is_deterministic_and_complete() -> None:
    ds = registry.create("dataset", "procedural", {"resolution": 1000, "shapes": ["torus",
                                                                                 "genus2"]})
    assert ds.names == ["torus", "genus2"] and len(ds) == 2
    a, b = ds[1], ds[1]
    assert a.name == "genus2" and a.points.shape == (1000, 3) and a.mesh is not None
    assert torch.equal(a.points, b.points)
    assert len(registry.create("dataset", "procedural", {"resolution": 10})) == 10


def test_unknown_shape_is_reported_with_a_suggestion() -> None:
    with pytest.raises(PcdkitError, match="did you mean 'torus'"):
        registry.create("dataset", "procedural", {"shapes": ["tours"]})


def test_punet_layout_is_read(tmp_path: Path, standin: Path) -> None:
    clouds = tmp_path / "pointclouds" / "test" / "1000_poisson"
    meshes = tmp_path / "meshes" / "test"
    clouds.mkdir(parents=True)
    meshes.mkdir(parents=True)
    for name in ("duck", "elk"):
        shutil.copy(standin / f"{name}.off", meshes)
        write_points(clouds / f"{name}.xyz", read_mesh(standin / f"{name}.off").vertices[:1000])
    ds = registry.create("dataset", "punet", {"root": str(tmp_path), "resolution": 1000})
    assert ds.names == ["duck", "elk"]
    item = ds[0]
    assert item.points.shape == (1000, 3) and item.mesh.faces.shape[1] == 3
    (meshes / "elk.off").unlink()
    with pytest.raises(PcdkitError, match="no mesh for elk"):
        registry.create("dataset", "punet", {"root": str(tmp_path), "resolution": 1000})
    with pytest.raises(PcdkitError, match="10000_poisson not found"):
        registry.create("dataset", "punet", {"root": str(tmp_path)})


def test_mesh_folder_caches_by_content(tmp_path: Path, standin: Path, cache_dir: Path) -> None:
    root = tmp_path / "meshes"
    root.mkdir()
    shutil.copy(standin / "duck.off", root)
    settings = {"root": str(root), "resolution": 800}
    first = registry.create("dataset", "mesh-folder", settings)[0]
    files = list(cache_dir.rglob("*.npy"))
    assert len(files) == 1
    again = registry.create("dataset", "mesh-folder", settings)[0]
    assert torch.equal(first.points, again.points)
    # a changed mesh gets a new cache entry, never the stale cloud
    text = (root / "duck.off").read_text().splitlines()
    v = [float(c) * 2 for c in text[2].split()]
    text[2] = " ".join(map(str, v))
    (root / "duck.off").write_text("\n".join(text) + "\n")
    registry.create("dataset", "mesh-folder", settings)[0]
    assert len(list(cache_dir.rglob("*.npy"))) == 2


def test_mesh_folder_without_meshes_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PcdkitError, match="no meshes"):
        registry.create("dataset", "mesh-folder", {"root": str(tmp_path)})


def test_generated_shapes_are_seeded_distinct_and_cached(cache_dir: Path) -> None:
    from pcdkit.datasets.generated import FAMILIES, generate_mesh

    settings = {"count": 10, "resolution": 500, "grid": 32}
    ds = registry.create("dataset", "generated-shapes", settings)
    assert [n.split("-")[0] for n in ds.names[:6]] == sorted(FAMILIES)
    shapes = list(ds)
    for s in shapes:  # centred, inside the unit sphere, touching it
        radius = s.mesh.vertices.norm(dim=1).max()
        assert s.points.shape == (500, 3) and abs(float(radius) - 1) < 1e-5
    again = registry.create("dataset", "generated-shapes", settings)[3]
    assert torch.equal(again.points, shapes[3].points)  # from the cache, identical
    assert len(list((cache_dir / "generated-shapes").glob("mesh-*.pt"))) == 10  # one per shape
    assert len(list((cache_dir / "generated-shapes").iterdir())) == 20  # + one per resolution
    # shape i depends on (seed, i) only; another seed gives other shapes of each family
    assert torch.equal(generate_mesh("csg", 0, 1, 32).vertices, shapes[1].mesh.vertices)
    other = generate_mesh("csg", 1, 1, 32)
    assert other.vertices.shape != shapes[1].mesh.vertices.shape or not torch.equal(
        other.vertices, shapes[1].mesh.vertices)
    sizes = {tuple(s.mesh.faces.shape) for s in shapes}
    assert len(sizes) >= 6  # ten distinct meshes, not copies


def test_thin_family_has_walls_the_other_families_lack() -> None:
    from pcdkit.datasets.generated import generate_mesh

    assert min(near_sheet_share(generate_mesh("thin", 0, i), 0.1) for i in (0, 2)) > 0.5
    assert near_sheet_share(generate_mesh("blobby", 0, 2), 0.1) < 0.05


def test_generated_shapes_family_filter_is_checked() -> None:
    with pytest.raises(PcdkitError, match="did you mean 'blobby'"):
        registry.create("dataset", "generated-shapes", {"families": ["blobyy"]})
