"""Neighbour search, FPS, normalisation, mesh sampling, patches, isosurfaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pcdkit.datasets.procedural import SHAPES, make_mesh
from pcdkit.errors import PcdkitError
from pcdkit.geometry import (
    available_backends,
    extract_patches,
    farthest_point_sampling,
    knn,
    knn_indices,
    normalize_unit_sphere,
    sample_mesh_poisson,
    sample_mesh_uniform,
)
from pcdkit.geometry.knn import smallest_indices
from pcdkit.geometry.sampling import face_areas
from pcdkit.geometry.triangles import points_to_triangles
from pcdkit.io import read_mesh
from tests.reference import greedy_fps, pairwise_sqdist

BACKENDS = available_backends()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("norm", [1, 2])
def test_knn_matches_brute_force(backend: str, norm: int) -> None:
    g = torch.Generator().manual_seed(1)
    q, r = torch.rand(2, 300, 3, generator=g), torch.rand(2, 500, 3, generator=g)
    dist, idx = knn(q, r, 8, norm=norm, backend=backend)
    for b in range(2):
        if norm == 2:
            full = pairwise_sqdist(q[b].numpy(), r[b].numpy())
        else:
            full = np.abs(q[b].numpy()[:, None].astype(np.float64) - r[b].numpy()[None]).sum(-1)
        ref_idx = np.argsort(full, axis=1)[:, :8]
        assert (idx[b].numpy() == ref_idx).mean() > 0.999
        assert np.allclose(dist[b].numpy(), np.take_along_axis(full, ref_idx, 1), atol=1e-6)
    assert torch.equal(knn_indices(q, r, 8, norm=norm, backend=backend), idx)
    assert torch.equal(knn_indices(q[0], r[0], 8, norm=norm, backend=backend), idx[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(8, 64, 1000), (3, 1234), (2, 5, 40_000), (4, 60)])
def test_two_level_selection_finds_the_same_smallest_entries_as_topk(
        shape: tuple, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(len(shape))
    d = torch.randn(shape, generator=g, dtype=dtype)  # negatives: ranked as integers, too
    d[..., 1::7] = d[..., :1]  # repeated values away from the smallest must not matter
    chosen = smallest_indices(d, 25)
    assert chosen.shape == (*shape[:-1], 25)
    expected = d.topk(25, dim=-1, largest=False).indices
    assert torch.equal(chosen.sort(-1).values, expected.sort(-1).values) or torch.equal(
        d.gather(-1, chosen).sort(-1).values, d.gather(-1, expected).sort(-1).values)


def test_unranked_torch_knn_returns_the_exact_neighbours_in_order() -> None:
    x = torch.relu(torch.randn(3, 700, 24, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64))
    exact = knn_indices(x, x, 17, backend="torch")
    fast = knn_indices(x, x, 17, backend="torch", rerank=False)
    assert torch.equal(fast, exact)  # float64: no near-tie within the products' rounding
    assert torch.equal(fast[..., 0], torch.arange(700).expand(3, -1))  # itself first


def test_knn_reproduces_pytorch3d_indices(golden: Path) -> None:
    data = np.load(golden / "pytorch3d_metric_inputs.npz")
    for name in ("duck", "elk", "fandisk"):
        cloud = torch.from_numpy(data[f"{name}_noisy"])
        for backend in BACKENDS:
            dist, idx = knn(cloud[:200], cloud, 16, backend=backend)
            assert (idx.numpy() == data[f"{name}_knn16_idx_first200"]).all()
            assert np.allclose(dist.numpy(), data[f"{name}_knn16_sqdist_first200"], atol=1e-7)


def test_knn_rejects_bad_arguments() -> None:
    x = torch.rand(10, 3)
    with pytest.raises(ValueError, match="k=11"):
        knn(x, x, 11)
    with pytest.raises(PcdkitError, match="unknown geometry backend"):
        knn(x, x, 2, backend="faiss")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_matches_greedy_reference(backend: str) -> None:
    pts = torch.rand(3, 400, 3, generator=torch.Generator().manual_seed(2))
    idx = farthest_point_sampling(pts, 40, backend=backend)
    for b in range(3):
        assert idx[b].tolist() == greedy_fps(pts[b].double().numpy(), 40)


def test_kdtree_fps_breaks_ties_like_the_greedy_definition_to_the_last_point() -> None:
    grid = torch.stack(torch.meshgrid(*[torch.arange(7.0)] * 3, indexing="ij"), -1)
    pts = torch.cat([grid.reshape(-1, 3), grid.reshape(-1, 3)[:50]])  # ties and duplicates
    idx = farthest_point_sampling(pts, len(pts), backend="scipy", start=5)
    assert idx.tolist() == greedy_fps(pts.double().numpy(), len(pts), start=5)


def test_fps_random_start_is_seeded() -> None:
    pts = torch.rand(500, 3)
    a = farthest_point_sampling(pts, 10, start=None, generator=torch.Generator().manual_seed(3))
    b = farthest_point_sampling(pts, 10, start=None, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and len(set(a.tolist())) == 10


def test_unit_sphere_normalisation_round_trips_and_applies_to_meshes() -> None:
    pts = torch.rand(2, 100, 3) * 7 + 3
    out, tf = normalize_unit_sphere(pts)
    assert torch.allclose(out.norm(dim=-1).amax(-1), torch.ones(2))
    mid = (out.amax(1) + out.amin(1)) / 2
    assert torch.allclose(mid, torch.zeros(2, 3), atol=1e-6)
    assert torch.allclose(tf.invert(out), pts, atol=1e-5)
    mesh = make_mesh("cube")
    v, tf1 = normalize_unit_sphere(mesh.vertices)
    assert torch.allclose(tf1.apply_mesh(mesh).vertices, v)


def test_uniform_samples_lie_on_the_mesh_with_area_proportional_density() -> None:
    mesh = make_mesh("superquadric-pillow")
    pts = sample_mesh_uniform(mesh, 20000, torch.Generator().manual_seed(0))
    assert points_to_triangles(pts, mesh.triangles).max() < 1e-10
    # the share of points above z = 0 equals the share of area above z = 0
    tri = mesh.triangles
    upper = tri[:, :, 2].mean(1) > 0
    share = float(face_areas(mesh)[upper].sum() / face_areas(mesh).sum())
    assert abs(float((pts[:, 2] > 0).float().mean()) - share) < 0.02


def test_poisson_sampling_returns_exactly_n_well_spread_points(standin: Path) -> None:
    mesh = read_mesh(standin / "casting.off")
    n = 5000
    pts = sample_mesh_poisson(mesh, n, torch.Generator().manual_seed(0))
    uni = sample_mesh_uniform(mesh, n, torch.Generator().manual_seed(0))
    assert pts.shape == (n, 3)
    assert points_to_triangles(pts, mesh.triangles).max() < 1e-9
    nn_p = knn(pts, pts, 2)[0][:, 1].sqrt()
    nn_u = knn(uni, uni, 2)[0][:, 1].sqrt()
    # blue noise: nearest-neighbour spacing is far more regular than for uniform samples
    assert nn_p.std() / nn_p.mean() < 0.25 < nn_u.std() / nn_u.mean()
    assert nn_p.min() > 5 * nn_u.min()
    # no region is missing: every mesh vertex has a sample nearby
    far = knn(mesh.vertices, pts, 1)[0].sqrt().max()
    assert far < 4 * nn_p.mean()


def test_patches_are_nearest_neighbours_of_fps_seeds() -> None:
    pts = torch.rand(2000, 3)
    patches, idx = extract_patches(pts, 6, 100)
    assert patches.shape == (6, 100, 3)
    seeds = farthest_point_sampling(pts, 6)
    assert torch.equal(idx[:, 0], seeds)
    for p in range(6):
        d = (pts - pts[seeds[p]]).square().sum(-1)
        assert set(idx[p].tolist()) == set(d.topk(100, largest=False).indices.tolist())


@pytest.mark.parametrize(("name", "genus"), [("genus2", 2), ("torus", 1), ("icosahedron", 0),
                                             ("superquadric-box", 0)])
def test_procedural_meshes_have_the_right_topology(name: str, genus: int) -> None:
    mesh = make_mesh(name)
    f = mesh.faces.numpy()
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1),
                      axis=0)
    assert len(mesh.vertices) - len(edges) + len(f) == 2 - 2 * genus
    assert name in SHAPES
