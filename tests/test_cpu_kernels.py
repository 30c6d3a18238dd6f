"""pcdkit's CPU kernels (AVX512-VNNI CPUs): the fused int8 score network computes the int8
arithmetic tile by tile; the brute-force search finds the exact neighbours."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pcdkit import kernels
from pcdkit.backbones.score_denoise.model import ScoreNet, _fused_eval_forward
from pcdkit.geometry.knn import knn, knn_indices
from pcdkit.kernels import cpu_kernels

pytestmark = pytest.mark.skipif(cpu_kernels() is None,
                                reason="needs AVX512-VNNI and a C++ compiler")


def _net(seed: int = 0, blocks: int = 4) -> ScoreNet:
    """A score network with trained-looking BatchNorm statistics and residual weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the default initialisation draws from the global generator
        torch.manual_seed(seed)
        net = ScoreNet(blocks=blocks).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.2)
        for block in net.blocks:  # fc_1 starts at zero; give the residual branch a say
            block.fc_1.weight.copy_(torch.randn(block.fc_1.weight.shape, generator=gen) * 0.1)
    return net


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _inputs(net: ScoreNet, m: int, k: int, seed: int = 1) -> tuple[torch.Tensor, list]:
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.randn(m, k, 3, generator=gen) * 0.05
    return offsets, net.condition(torch.randn(m, 60, generator=gen))


@torch.no_grad()
def test_one_tile_computes_the_int8_arithmetic() -> None:
    net = _net(blocks=1)
    offsets, cond = _inputs(net, 50, 4)
    want = net(offsets, torch.empty(0), cond, precision="int8")
    got = _fused_eval_forward(cpu_kernels(), net, offsets, cond, net.conv_out, tile=200)
    # same codes, scales and bias correction; only the float sums' order differs
    assert _rel(got, want) < 1e-3


@torch.no_grad()
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_block_keeps_the_int8_accuracy(seed: int) -> None:
    net = _net(seed)
    offsets, cond = _inputs(net, 50, 4, seed)
    exact = net(offsets, torch.empty(0), cond)
    int8 = _rel(net(offsets, torch.empty(0), cond, precision="int8"), exact)
    fused = _rel(_fused_eval_forward(cpu_kernels(), net, offsets, cond, net.conv_out, tile=200),
                 exact)
    # after the first block the sums' order moves scales by ~1e-7, which flips near-tie weight
    # codes (measured: the two int8 outputs 0.01-0.2 % apart); a wrong term would cost far more
    assert abs(fused - int8) < 0.1 * int8


@torch.no_grad()
def test_tiles_code_their_own_rows_including_a_partial_last_tile() -> None:
    net = _net(1, blocks=1)
    offsets, cond = _inputs(net, 50, 1)  # one row per frame, so a tile is a slice of frames
    got = _fused_eval_forward(cpu_kernels(), net, offsets, cond, net.conv_out, tile=7)
    want = torch.cat([net(offsets[i:i + 7], torch.empty(0), [c[i:i + 7] for c in cond],
                          precision="int8") for i in range(0, 50, 7)])
    assert _rel(got, want) < 1e-3


@torch.no_grad()
def test_float64_offsets_take_the_int8_path() -> None:
    net = _net(2)
    offsets, cond = _inputs(net, 20, 4)
    net, offsets, cond = net.double(), offsets.double(), [c.double() for c in cond]
    got = net(offsets, torch.empty(0), cond, precision="int8-fused")
    assert torch.equal(got, net(offsets, torch.empty(0), cond, precision="int8"))


@pytest.mark.parametrize(("m", "n", "d", "k"), [(1000, 1000, 3, 4), (300, 517, 24, 17),
                                                (5, 20, 2, 20)])
def test_brute_force_search_finds_the_exact_neighbours(m: int, n: int, d: int, k: int) -> None:
    gen = torch.Generator().manual_seed(n)
    q, r = torch.randn(3, m, d, generator=gen), torch.randn(3, n, d, generator=gen)
    want = knn_indices(q, r, k, backend="torch")  # exact re-ranked distances
    assert torch.equal(knn_indices(q, r, k, backend="avx512"), want)
    dist, _ = knn(q, r, k, backend="avx512")
    assert torch.equal(dist, knn(q, r, k, backend="torch")[0])


def test_brute_force_ties_rank_the_lower_index_first() -> None:
    r = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, 0, 0], [1, 0, 0]]])
    idx = knn_indices(torch.zeros(1, 1, 3), r, 5, backend="avx512")
    assert idx.tolist() == [[[3, 0, 1, 2, 4]]]


def test_brute_force_search_leaves_other_cases_to_brute_force_in_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    q, r = torch.randn(2, 50, 3, generator=gen), torch.randn(2, 100, 3, generator=gen)
    for args in [(q, r, 70, 2), (q, r, 5, 1), (q.double(), r.double(), 5, 2)]:  # k > 64, L1
        assert torch.equal(knn_indices(*args[:3], norm=args[3], backend="avx512"),
                           knn_indices(*args[:3], norm=args[3], backend="torch"))


def test_builds_are_staged_by_the_sources_content(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    name, sources = kernels._staged_sources()
    again, _ = kernels._staged_sources()  # another checkout with the same sources: same build
    assert again == name and all(p.parent == tmp_path / name for p in sources)
    package = Path(kernels.__file__).parent
    assert all(p.read_bytes() == (package / p.name).read_bytes() for p in sources)
    monkeypatch.setattr(kernels, "_FLAGS", [*kernels._FLAGS, "-DOTHER"])
    assert kernels._staged_sources()[0] != name
