"""Device rules: CPU-only backends take tensors from any device and answer on that device."""

from __future__ import annotations

import torch

from pcdkit.geometry.fps import farthest_point_sampling
from pcdkit.geometry.knn import knn
from pcdkit.metrics.frechet import frechet_distance
from pcdkit.metrics.p2m import point_mesh_distance
from pcdkit.structures import Mesh


def test_cpu_only_backends_answer_on_the_callers_device(device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(2, 300, 3, generator=g)
    on = pts.to(device)
    d, idx = knn(on, on, 5, backend="scipy")
    assert idx.device == device and d.device == device
    assert torch.equal(idx.cpu(), knn(pts, pts, 5, backend="torch")[1])
    fps = farthest_point_sampling(on, 20, backend="scipy", start=0)
    assert fps.device == device
    assert torch.equal(fps.cpu(), farthest_point_sampling(pts, 20, backend="torch", start=0))
    verts = torch.randn(30, 3, generator=g)
    faces = torch.randint(30, (40, 3), generator=g)
    mesh = Mesh(verts.to(device), faces.to(device))
    p2m = point_mesh_distance(pts[0].to(device), mesh, backend="scipy")
    assert p2m.device == device
    ref = point_mesh_distance(pts[0], Mesh(verts, faces), backend="torch")
    assert torch.allclose(p2m.cpu(), ref, rtol=1e-5)
    feats = torch.randn(50, 4, generator=g).to(device)
    assert frechet_distance(feats, feats + 1) > 3.9  # |mu_a - mu_b|^2 = 4, on any device
