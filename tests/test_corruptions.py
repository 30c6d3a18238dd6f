"""Gaussian corruption: scale, intermediate iterates, seeding."""

from __future__ import annotations

import pytest
import torch

from pcdkit.core import registry


def test_noise_std_is_relative_to_the_unit_sphere_radius() -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 20000, 3, generator=g) * torch.tensor([10.0, 1, 1])
    radius = (x0 - (x0.amax(1, keepdim=True) + x0.amin(1, keepdim=True)) / 2).norm(
        dim=-1).amax(1)
    out = registry.create("corruption", "gaussian", {"std": 0.02})(x0, generator=g)
    std = (out.x_t - x0).std(dim=(1, 2))
    assert torch.allclose(std, 0.02 * radius, rtol=0.02)
    absolute = registry.create("corruption", "gaussian", {"std": 0.02, "relative": False})
    assert (absolute(x0, generator=g).x_t - x0).std().item() == pytest.approx(0.02, rel=0.02)


def test_intermediate_iterates_follow_one_brownian_path() -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.zeros(1, 200000, 3)
    x0[0, 0] = 1.0  # radius 1 / 2 after centring on the bounding box: keep scale simple
    corr = registry.create("corruption", "gaussian", {"std": 0.1, "relative": False})
    out = corr(x0, generator=g, taus=[0.5, 0.25])
    assert sorted(out.intermediates) == [0.25, 0.5]
    d_quarter = out.intermediates[0.25] - x0
    d_half = out.intermediates[0.5] - x0
    d_end = out.x_t - x0
    assert d_quarter.var().item() == pytest.approx(0.01 * 0.25, rel=0.02)
    assert d_half.var().item() == pytest.approx(0.01 * 0.5, rel=0.02)
    assert d_end.var().item() == pytest.approx(0.01, rel=0.02)
    # independent increments: Cov(W_1/2, W_1 - W_1/2) = 0
    inc = (d_end - d_half).flatten()
    assert torch.corrcoef(torch.stack([d_half.flatten(), inc]))[0, 1].abs() < 0.01


def test_corruption_is_repeatable_given_a_seed_and_rejects_bad_tau() -> None:
    corr = registry.create("corruption", "gaussian", {"std": 0.05})
    x0 = torch.rand(100, 3)
    a = corr(x0, generator=torch.Generator().manual_seed(7)).x_t
    b = corr(x0, generator=torch.Generator().manual_seed(7)).x_t
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="strictly in"):
        corr(x0, taus=[1.0])
