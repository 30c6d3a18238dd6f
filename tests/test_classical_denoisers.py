"""Bilateral filtering and jet smoothing: exact where the maths says so, denoising otherwise."""

from __future__ import annotations

import pytest
import torch

from pcdkit.backbones.classical.bilateral import bilateral_filter
from pcdkit.backbones.classical.jet import jet_smooth
from pcdkit.core import registry
from pcdkit.errors import PcdkitError
from pcdkit.geometry.local_frames import pca_frames
from pcdkit.metrics.chamfer import chamfer_distance


def _grid(n: int = 40) -> torch.Tensor:
    u = torch.linspace(-1, 1, n)
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([uu.flatten(), vv.flatten()], -1)


def test_pca_normal_of_a_tilted_plane_is_its_normal() -> None:
    uv = _grid(10)
    normal = torch.tensor([1.0, 2.0, 2.0]) / 3
    a = torch.tensor([2.0, -1.0, 0.0]) / 5 ** 0.5
    b = torch.linalg.cross(normal, a)
    pts = uv[:, :1] * a + uv[:, 1:] * b
    _, frames = pca_frames(pts.unsqueeze(0))
    assert abs(float(frames[0, :, 2] @ normal)) == pytest.approx(1.0, abs=1e-6)


def test_jet_of_degree_two_leaves_a_quadric_in_place() -> None:
    uv = _grid() * 0.5
    z = 0.3 * uv[:, 0] ** 2 + 0.2 * uv[:, 0] * uv[:, 1] - 0.1 * uv[:, 1] ** 2
    pts = torch.cat([uv, z[:, None]], 1).double()
    out = jet_smooth(pts, k=24, degree=2)
    inner = uv.abs().amax(1) < 0.4  # border neighbourhoods are one-sided but still exact
    assert (out - pts)[inner].abs().max() < 1e-6


# jet: a 6-coefficient fit over 24 neighbours keeps about sqrt(6 / 24) of the noise std;
# bilateral: its spatial kernel (sigma_d 0.04) averages over about 10 grid neighbours here
@pytest.mark.parametrize(("method", "kept"), [("jet", 0.45), ("bilateral", 0.65)])
def test_noise_across_a_plane_shrinks(method: str, kept: float) -> None:
    g = torch.Generator().manual_seed(0)
    uv = _grid()
    pts = torch.cat([uv, 0.02 * torch.randn(len(uv), 1, generator=g)], 1)
    out = (jet_smooth(pts) if method == "jet" else bilateral_filter(pts))
    inner = uv.abs().amax(1) < 0.8
    assert out[inner, 2].std() < kept * pts[inner, 2].std()


@pytest.mark.parametrize("name", ["jet", "bilateral"])
def test_plugins_denoise_a_noisy_sphere_on_every_device(name: str, device: torch.device) -> None:
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(5000, 3, generator=g)
    clean = clean / clean.norm(dim=1, keepdim=True)
    noisy = (clean + 0.02 * torch.randn(clean.shape, generator=g)).to(device)
    out = registry.create("backbone", name, {}).denoise(noisy)
    assert out.device == noisy.device and out.shape == noisy.shape
    before = float(chamfer_distance(noisy.cpu(), clean))
    assert float(chamfer_distance(out.cpu(), clean)) < 0.75 * before


def test_too_few_points_or_neighbours_is_a_clear_error() -> None:
    with pytest.raises(PcdkitError, match="at least k=30 points"):
        bilateral_filter(torch.rand(10, 3))
    with pytest.raises(PcdkitError, match="degree-3 fit has 10 coefficients"):
        jet_smooth(torch.rand(100, 3), k=8, degree=3)
