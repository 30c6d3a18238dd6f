"""SDE corruption processes: statistics against closed forms, the cat map, user processes."""

from __future__ import annotations

import math

import pytest
import torch

from pcdkit.core import registry
from pcdkit.corruptions.processes import cat_map, cat_map_permutation
from pcdkit.corruptions.sde import from_functions

# periods of Arnold's cat map on n x n grids (Dyson & Falk 1992)
CAT_PERIODS = {2: 3, 3: 4, 4: 3, 5: 10, 6: 12, 7: 8, 8: 6, 9: 12, 10: 30, 11: 5, 12: 12}


@pytest.mark.parametrize(("n", "period"), sorted(CAT_PERIODS.items()))
def test_cat_map_is_a_bijection_with_the_known_period(n: int, period: int) -> None:
    src = cat_map_permutation(n)
    assert sorted(src.tolist()) == list(range(n * n))
    img = torch.arange(n * n, dtype=torch.float32).reshape(1, n, n)
    steps = next(k for k in range(1, 100) if torch.equal(cat_map(img, k), img))
    assert steps == period


def test_gaussian_ve_em_matches_the_closed_form_marginals() -> None:
    x0 = torch.zeros(20000, 2)
    t = torch.full((20000,), 0.8)
    closed = registry.create("corruption", "gaussian-ve", {"sigma": 10.0})
    em = registry.create("corruption", "gaussian-ve", {"sigma": 10.0, "method": "em",
                                                       "steps": 200})
    g = torch.Generator().manual_seed(0)
    a = closed(x0, generator=g, t=t)
    b = em(x0, generator=g, t=t)
    expected = float(closed.marginal_std(torch.tensor(0.8)) ** 2)
    half = float(closed.marginal_std(torch.tensor(0.4)) ** 2)
    for out in (a, b):
        assert abs(float(out.x_t.mean())) < 0.03
        assert float(out.x_t.var()) == pytest.approx(expected, rel=0.05)
        assert float(out.intermediates[0.5].var()) == pytest.approx(half, rel=0.05)


def test_end_times_are_per_sample_uniform_and_seeded() -> None:
    proc = registry.create("corruption", "gaussian-ve", {"t_min": 0.2, "t_max": 0.6})
    x0 = torch.zeros(4000, 1)
    out = proc(x0, generator=torch.Generator().manual_seed(1))
    assert float(out.t.min()) >= 0.2 and float(out.t.max()) <= 0.6
    assert float(out.t.mean()) == pytest.approx(0.4, abs=0.01)
    again = proc(x0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out.x_t, again.x_t)
    # larger t, larger spread: per-sample times are really used
    big = out.t > 0.5
    assert out.x_t[big].std() > out.x_t[~big].std()


def test_pointcloud_em_intermediate_carries_half_the_variance() -> None:
    x0 = torch.rand(8, 5000, 3) * 2 - 1
    proc = registry.create("corruption", "pointcloud-em", {"std": 0.02, "steps": 10})
    out = proc(x0, generator=torch.Generator().manual_seed(2))
    radius = (x0 - (x0.amax(1, keepdim=True) + x0.amin(1, keepdim=True)) / 2).norm(
        dim=-1).amax(1)
    final = ((out.x_t - x0).var(dim=(1, 2)) / radius**2).mean()
    half = ((out.intermediates[0.5] - x0).var(dim=(1, 2)) / radius**2).mean()
    assert float(final) == pytest.approx(0.02**2, rel=0.03)
    assert float(half) == pytest.approx(0.02**2 / 2, rel=0.03)


def test_noise_free_lotka_volterra_conserves_its_invariant() -> None:
    lv = registry.create("corruption", "lotka-volterra", {"noise": 0.0, "steps": 4000,
                                                          "t_min": 3.0, "t_max": 3.0})
    x0 = torch.tensor([[4.0, 2.0], [3.0, 1.0]])

    def invariant(x: torch.Tensor) -> torch.Tensor:
        u, v = x[..., 0], x[..., 1]
        return 0.2 * u - 0.8 * torch.log(u) + 0.4 * v - 1.0 * torch.log(v)

    out = lv(x0.double())
    assert torch.allclose(invariant(out.x_t), invariant(x0.double()), rtol=0, atol=2e-3)
    assert not torch.allclose(out.x_t, x0.double())  # it did move along the orbit


def test_swap_clean_intermediate_has_the_expected_clean_share() -> None:
    x0 = torch.rand(1, 20000, 3)
    out = registry.create("corruption", "swap-clean", {"std": 0.05})(
        x0, generator=torch.Generator().manual_seed(3), taus=[0.25, 0.5])
    for tau in (0.25, 0.5):
        clean = (out.intermediates[tau] == x0).all(-1).float().mean()
        assert float(clean) == pytest.approx(1 - tau, abs=0.02)


def test_user_defined_process_needs_only_drift_and_diffusion() -> None:
    # Ornstein-Uhlenbeck: dx = -theta x dt + s dW, stationary variance s^2 / (2 theta)
    ou = from_functions(lambda x, t: -2.0 * x, lambda x, t: torch.full_like(t, 1.0),
                        t_min=4.0, t_max=4.0, steps=400)
    out = ou(torch.full((20000, 1), 3.0), generator=torch.Generator().manual_seed(4))
    assert float(out.x_t.mean()) == pytest.approx(3.0 * math.exp(-8.0), abs=0.02)
    assert float(out.x_t.var()) == pytest.approx(0.25, rel=0.05)
    assert set(out.intermediates) == {0.5}


def test_cat_map_process_runs_on_image_batches() -> None:
    imgs = torch.rand(4, 1, 28, 28)
    out = registry.create("corruption", "cat-map", {"steps": 20})(
        imgs, generator=torch.Generator().manual_seed(5))
    assert out.x_t.shape == imgs.shape and out.intermediates[0.5].shape == imgs.shape
    with pytest.raises(ValueError, match="square"):
        cat_map(torch.rand(1, 4, 5))


def test_an_unbatched_cloud_is_one_sample_and_fields_can_see_the_clean_input() -> None:
    from pcdkit.corruptions.sde import from_functions

    seen = []

    def diffusion(x: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        seen.append(x0.shape)
        return 0.01 * x0.norm(dim=-1, keepdim=True).amax(-2, keepdim=True)

    process = from_functions(lambda x, t: torch.zeros_like(x), diffusion, steps=4, event_dims=2)
    cloud = torch.randn(50, 3)
    out = process(cloud, generator=torch.Generator().manual_seed(0), taus=(0.5,))
    assert out.x_t.shape == (50, 3) and out.intermediates[0.5].shape == (50, 3)
    assert out.t.shape == (1,) and seen[0] == (1, 50, 3)  # one end time for the whole cloud


def test_pointcloud_em_keeps_no_state_between_calls() -> None:
    from pcdkit.corruptions.processes import PointCloudEM

    process = PointCloudEM(std=0.02, t_min=1.0, t_max=1.0, steps=10)
    small, large = torch.randn(1, 200, 3), 100 * torch.randn(1, 200, 3)
    gen = torch.Generator().manual_seed
    a = process(small, generator=gen(0)).x_t - small
    process(large, generator=gen(1))  # must not leave the large cloud's radius behind
    b = process(small, generator=gen(0)).x_t - small
    assert process.radius is None and torch.equal(a, b)
