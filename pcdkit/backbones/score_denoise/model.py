"""The score-denoise network, laid out so the released checkpoint's tensors map one-to-one.

Feature extraction (per point, 60 channels): 4 blocks, each a linear map to 24 channels (block 0
from xyz without activation, later blocks from 60 channels with ReLU) followed by a dense edge
convolution over the k = 16 nearest neighbours *in the block's own feature space* (dynamic graph,
the point itself excluded). Edge features are ``nbr - x`` in block 0 and ``[x, nbr, nbr - x]``
later; three dense layers (12 channels each, the last without activation) are concatenated in
front of their input, and the result is max-pooled over neighbours: 24 + 3 * 12 = 60 channels.

Score estimation: for a point's frame offsets ``o`` (K, 3) and the point's feature ``f`` (60),
``c = [o, f]`` (63) -> 1x1 conv to 128 -> 4 residual blocks (BN, ReLU, conv, BN, ReLU, conv;
shortcut identity plus a 1x1 conv of ``c``) -> BN, ReLU, conv to 3.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pcdkit.geometry.knn import gather_neighbours, knn_indices
from pcdkit.kernels import cpu_kernels

#: arithmetic of the inference path's hidden products (see :meth:`ScoreNet.forward`)
Precision = Literal["float32", "bfloat16", "bfloat16-rounded", "int8", "int8-fused"]
TrainingPrecision = Literal["float32", "bfloat16"]
#: rows per tile of the fused int8 kernel: a tile's stream, activations, codes and sums (~1.6 MB)
#: stay in a 2 MB L2; 1,024 rows (256 frames of 4 neighbours) measured fastest of 128-1,024
_FUSED_TILE = 1024


class FCLayer(nn.Module):
    """Linear layer with optional ReLU (checkpoint key: ``<name>.linear``)."""

    def __init__(self, n_in: int, n_out: int, relu: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to the last dimension."""
        y = self.linear(x)
        return torch.relu(y) if self.relu else y


class DenseEdgeConv(nn.Module):
    """Densely connected edge convolution with max aggregation."""

    def __init__(self, channels: int = 24, growth: int = 12, layers: int = 3, k: int = 16,
                 relative_only: bool = False, backend: str = "auto") -> None:
        super().__init__()
        self.k = k
        self.relative_only = relative_only
        self.backend = backend
        edge = channels if relative_only else 3 * channels
        self.layer_first = FCLayer(edge, growth, relu=True)
        self.layers = nn.ModuleList(
            FCLayer(channels + i * growth, growth, relu=True) for i in range(1, layers - 1))
        self.layer_last = FCLayer(channels + (layers - 1) * growth, growth, relu=False)
        self.out_channels = channels + layers * growth

    def forward(self, x: torch.Tensor, at: torch.Tensor | None = None,
                split: bool = False, graph: torch.Tensor | None = None,
                rerank: bool = True, backend: str | None = None) -> torch.Tensor:
        """(B, N, C) -> (B, N, C + layers * growth), graph built on ``x`` itself, or on
        ``graph`` (B, N, D) coordinates with the same neighbours, searched as
        :func:`~pcdkit.geometry.knn.knn_indices` with ``rerank`` and ``backend`` (default: the
        module's); with ``at`` (M,) indices, only those points' outputs (B, M, C + layers *
        growth).

        ``split=True`` never materialises the edge features ``e = [x, n, n - x]`` or the dense
        inputs ``[h_j, ..., h_1, x]``: a linear map splits into per-point parts (computed once
        per point, not once per edge) and per-edge parts, ``W e = (W_x - W_d) x + (W_n + W_d)
        n``, and max-pooling the constant ``x`` over neighbours returns ``x``. Same maths at a
        fraction of the memory traffic, but rounded differently: the dynamic graph of the next
        block can then break near-ties between neighbours differently (0.07 on the golden
        patch's features), so inference keeps the reference's concatenating layout (exact to
        the bit) and training, where no reference rounding is at stake, splits.
        """
        centre = x if at is None else x[:, at]
        space = x if graph is None else graph
        idx = knn_indices((space if at is None else space[:, at]).detach(), space.detach(),
                          self.k + 1, backend=backend or self.backend, rerank=rerank)
        idx = idx[..., 1:]  # drop the nearest: the point itself
        if split:
            return self._split(x, centre, idx)
        nbr = gather_neighbours(x, idx)
        c = centre.unsqueeze(-2).expand_as(nbr)
        edge = nbr - c if self.relative_only else torch.cat([c, nbr, nbr - c], -1)
        y = torch.cat([self.layer_first(edge), c], -1)
        for layer in self.layers:
            y = torch.cat([layer(y), y], -1)
        y = torch.cat([self.layer_last(y), y], -1)
        return y.amax(dim=-2)

    def _split(self, x: torch.Tensor, centre: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        C = x.shape[-1]
        w = self.layer_first.linear.weight
        if self.relative_only:  # W (n - x) + b
            point, edge = -(centre @ w.T) + self.layer_first.linear.bias, x @ w.T
        else:
            w_x, w_n, w_d = w[:, :C], w[:, C:2 * C], w[:, 2 * C:]
            point = F.linear(centre, w_x - w_d, self.layer_first.linear.bias)
            edge = x @ (w_n + w_d).T
        hs = [torch.relu(gather_neighbours(edge, idx) + point.unsqueeze(-2))]  # (B, M, k, g)
        for layer in [*self.layers, self.layer_last]:
            # input order is [h_j, ..., h_1, x]: growth-sized blocks first, x last
            wl = layer.linear.weight
            g = hs[0].shape[-1]
            y = F.linear(centre, wl[:, len(hs) * g:], layer.linear.bias).unsqueeze(-2)
            for i, h in enumerate(reversed(hs)):
                y = y + h @ wl[:, i * g:(i + 1) * g].T
            hs.append(torch.relu(y) if layer.relu else y)
        pooled = [h.amax(dim=-2) for h in reversed(hs)]
        return torch.cat([*pooled, centre], -1)


class FeatureExtraction(nn.Module):
    """Four dynamic-graph dense edge-convolution blocks: (B, N, 3) -> (B, N, 60)."""

    def __init__(self, blocks: int = 4, channels: int = 24, growth: int = 12, k: int = 16,
                 backend: str = "auto") -> None:
        super().__init__()
        self.transforms = nn.ModuleList()
        self.convs = nn.ModuleList()
        n_in = 3
        for i in range(blocks):
            self.transforms.append(FCLayer(n_in, channels, relu=i > 0))
            conv = DenseEdgeConv(channels, growth, 3, k, relative_only=i == 0, backend=backend)
            self.convs.append(conv)
            n_in = conv.out_channels
        self.out_channels = n_in

    def forward(self, x: torch.Tensor, first: nn.Module | None = None,
                at: torch.Tensor | None = None, split: bool = False,
                fast_graphs: bool = False, backend: str | None = None) -> torch.Tensor:
        """Per-point features (B, N, 60) of a batch of patches (B, N, 3), or only at the
        points ``at`` (M,) -> (B, M, 60) (the last block then runs for those points alone);
        ``first`` replaces the first layer (IGO's intermediate encoder E_tau); ``split`` and
        ``backend`` (the graphs' search) as in :meth:`DenseEdgeConv.forward`.

        ``fast_graphs`` builds the graphs as training may, the same neighbours but for
        near-ties: the first block's in 3-D (:func:`metric_coordinates`), the others ranked by
        matrix-product distances without exact re-ranking; 1.5-4x faster searches, but a
        flipped near-tie moves the reference's golden patch by 4 % of its displacement
        (0.2 % with re-ranking), so denoising keeps the exact graphs.
        """
        last = len(self.convs) - 1
        for i, (transform, conv) in enumerate(zip(self.transforms, self.convs, strict=True)):
            layer = first if i == 0 and first is not None else transform
            graph = metric_coordinates(layer, x) if i == 0 and fast_graphs else None
            x = conv(layer(x), at=at if i == last else None, split=split, graph=graph,
                     rerank=not fast_graphs, backend=backend)
        return x


def metric_coordinates(layer: nn.Module, xyz: torch.Tensor) -> torch.Tensor | None:
    """Points (B, N, 3) ``y = xyz L`` with ``|y_i - y_j| = |layer(xyz_i) - layer(xyz_j)|``, or
    None: ``layer`` must be an :class:`FCLayer` without ReLU, ``f = W x + b``.

    Then ``|f_i - f_j|^2 = d^T W^T W d = |L^T d|^2`` with ``W^T W = L L^T`` (Cholesky), so the
    first block's 24-channel graph is a 3-D one, which a KD-tree searches ~4x faster than the
    brute-force feature-space search. Same neighbours up to rounding at near-ties.
    """
    if not isinstance(layer, FCLayer) or layer.relu or xyz.shape[-1] != 3:
        return None
    w = layer.linear.weight.detach().double()
    chol, info = torch.linalg.cholesky_ex(w.T @ w)
    if int(info) != 0:  # W of rank < 3: the feature graph is not a 3-D metric one
        return None
    return xyz.detach() @ chol.to(xyz.dtype)


class ResBlock(nn.Module):
    """Pre-activation residual block of 1x1 convolutions, conditioned on ``c``."""

    def __init__(self, c_dim: int, size: int) -> None:
        super().__init__()
        self.bn_0 = nn.BatchNorm1d(size)
        self.bn_1 = nn.BatchNorm1d(size)
        self.fc_0 = nn.Conv1d(size, size, 1)
        self.fc_1 = nn.Conv1d(size, size, 1)
        self.fc_c = nn.Conv1d(c_dim, size, 1)
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor, c_term: torch.Tensor) -> torch.Tensor:
        """``c_term`` is ``fc_c(c)``, computed by the caller (it can be shared across steps)."""
        h = self.fc_0(torch.relu(self.bn_0(x)))
        return x + self.fc_1(torch.relu(self.bn_1(h))) + c_term


def _split_conv(conv: nn.Conv1d, n_xyz: int) -> tuple[torch.Tensor, torch.Tensor]:
    w = conv.weight[..., 0]
    return w[:, :n_xyz], w[:, n_xyz:]


class ScoreNet(nn.Module):
    """Score of frame offsets conditioned on the centre point's feature."""

    def __init__(self, feat_dim: int = 60, hidden: int = 128, blocks: int = 4,
                 compiled_training: bool = False, compiled_inference: bool = False,
                 training_precision: TrainingPrecision = "float32") -> None:
        super().__init__()
        #: the training forward's products: ``bfloat16`` runs it under autocast (products in
        #: bfloat16 with float32 sums; weights, residual stream and BatchNorm statistics stay
        #: float32); 1.25-1.4x faster eager steps at batch 8 on an AVX512-BF16 CPU
        #: (README "Training")
        self.training_precision = training_precision
        #: run the training-mode forward through torch.compile (inductor fuses the BatchNorm,
        #: ReLU and residual element-wise work; about 1.5x faster per step after a ~45 s
        #: first-call compilation on this CPU)
        self.compiled_training = compiled_training
        #: run the fused inference forward through torch.compile: inductor fuses the
        #: element-wise work between two products (and, in bfloat16, the conversions) into
        #: single loops; 0.65x the eager bfloat16 time per cloud (benchmarks/HISTORY.md)
        self.compiled_inference = compiled_inference
        c_dim = 3 + feat_dim
        self.conv_p = nn.Conv1d(c_dim, hidden, 1)
        self.blocks = nn.ModuleList(ResBlock(c_dim, hidden) for _ in range(blocks))
        self.bn_out = nn.BatchNorm1d(hidden)
        self.conv_out = nn.Conv1d(hidden, 3, 1)

    def condition(self, feat: torch.Tensor) -> list[torch.Tensor]:
        """Feature parts of every conv that reads ``c = [xyz, feat]``: (M, hidden) each.

        The 1x1 convs on ``c`` are linear, so ``W c + b = W_xyz xyz + (W_feat feat + b)``; the
        bracket depends only on the centre point and is computed once, not once per neighbour
        and step.
        """
        out = []
        for conv in [self.conv_p] + [b.fc_c for b in self.blocks]:
            _, w_feat = _split_conv(conv, 3)
            out.append(feat @ w_feat.T + conv.bias)
        return out

    def forward(self, offsets: torch.Tensor, feat: torch.Tensor,
                cond: list[torch.Tensor] | None = None, last: nn.Conv1d | None = None,
                precision: Precision = "float32") -> torch.Tensor:
        """Scores (M, K, 3) for offsets (M, K, 3) of M frames with centre features (M, F).

        ``cond`` (from :meth:`condition`) may be passed to reuse the feature terms. For
        inference (eval mode, no autograd) a fused path runs: BatchNorm as a per-channel affine
        map, folded into the next 1x1 conv where the algebra allows, and 1x1 convs as matrix
        products on (rows, channels), in place where possible. ``last`` replaces the output
        layer (IGO's intermediate decoder D_tau). ``precision`` is that of the fused path's
        hidden 128 x 128 products: ``bfloat16`` (float32 accumulation, residual stream kept in
        float32; CPU kernels round each product's result to bfloat16) is faster on hardware
        with native bfloat16; ``bfloat16-rounded`` rounds inputs and results the same way but
        multiplies in float32: bfloat16's numbers up to the order of the float32 sums, at
        float32 speed (to measure bfloat16's effect on any CPU); ``int8`` codes activations per
        channel and weights per output channel for int8 x int8 -> int32 products
        (:func:`_int8_product`; AVX512-VNNI and AMX-INT8 CPUs run them fastest); ``int8-fused``
        runs the whole network in one hand-fused kernel over L2-sized row tiles (per-tile
        channel codes, :mod:`pcdkit.kernels`) on CPUs with AVX512-VNNI, and ``int8``'s path
        where the kernel cannot run (another device or dtype).
        """
        cond = self.condition(feat) if cond is None else cond
        last = self.conv_out if last is None else last
        if not self.training and not torch.is_grad_enabled():
            if precision == "int8-fused":
                kernel = cpu_kernels() if offsets.device.type == "cpu" else None
                if kernel is not None and offsets.dtype == torch.float32:
                    return _fused_eval_forward(kernel, self, offsets, cond, last)
                precision = "int8"
            infer = _compiled_eval_forward() if self.compiled_inference else _eval_forward
            return infer(self, offsets, cond, last, precision)
        fn = _compiled_train_forward() if self.compiled_training else _train_forward
        low = self.training_precision == "bfloat16"
        with torch.autocast(offsets.device.type, dtype=torch.bfloat16, enabled=low):
            return fn(self, offsets, cond, last).to(offsets.dtype)  # float64 stays exact


def _eval_forward(model: ScoreNet, offsets: torch.Tensor, cond: list[torch.Tensor],
                  last: nn.Conv1d, precision: Precision) -> torch.Tensor:
    """Inference-mode score net (:meth:`ScoreNet.forward`'s fused path) -> (M, K, 3)."""
    # Memory traffic, not arithmetic, is what the 128-channel element-wise work costs, so
    # every BatchNorm + ReLU + 1x1 conv runs as one clamp and one GEMM (see _relu_affine)
    # and the residual stream is updated in place by the GEMMs.
    M, K, _ = offsets.shape
    H = last.in_channels
    convs = [model.conv_p] + [b.fc_c for b in model.blocks]
    w_xyz = [_split_conv(conv, 3)[0] for conv in convs]
    off = offsets.reshape(M * K, 3)
    net = off @ w_xyz[0].T
    net.view(M, K, H).add_(cond[0].unsqueeze(1))
    clamped = torch.empty_like(net)
    fp32 = precision == "float32"
    # bfloat16 paths keep the products' operands in bfloat16 from the element-wise op that
    # makes them (computed in float32, rounded once on writing) and add products into the
    # float32 stream directly: the same numbers as rounding separately, two passes fewer
    int8 = precision == "int8"  # quantised from float32 operands, like float32's
    hidden = torch.empty_like(net, dtype=net.dtype if fp32 or int8 else torch.bfloat16)
    low_in = clamped if fp32 or int8 else torch.empty_like(hidden)

    def low(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        w = weight.T.to(torch.bfloat16)
        if precision == "bfloat16-rounded":  # bf16 x bf16 products are exact in float32
            return (a.float() @ w.float()).to(torch.bfloat16)
        return a @ w  # float32 sums, the result rounded to bfloat16

    for j, block in enumerate(model.blocks):
        lo, hi, scale, shift = _relu_affine(block.bn_0)
        s1, t1 = _bn_affine(block.bn_1)  # bn_1 folded into fc_0's rows
        if fp32:
            w0, b0 = _fold(block.fc_0, scale, shift)
            torch.clamp(net, lo, hi, out=clamped)
            torch.addmm(b0 * s1 + t1, clamped, (w0 * s1[:, None]).T, out=hidden)
        else:  # normalised in float32 first: bfloat16 / int8 then round O(1) activations
            torch.addcmul(shift, net, scale, out=low_in).relu_()
            w0 = block.fc_0.weight[..., 0] * s1[:, None]
            product = _int8_product(low_in, w0) if int8 else low(low_in, w0)
            torch.add(product, block.fc_0.bias * s1 + t1, out=hidden)
        hidden.relu_()
        w1 = block.fc_1.weight[..., 0]
        if fp32:
            net.addmm_(hidden, w1.T)
        elif int8:
            net.add_(_int8_product(hidden, w1))
        else:
            net.add_(low(hidden, w1))
        net.addmm_(off, w_xyz[j + 1].T)
        net.view(M, K, H).add_((cond[j + 1] + block.fc_1.bias).unsqueeze(1))
    lo, hi, scale, shift = _relu_affine(model.bn_out)
    w, b = _fold(last, scale, shift)
    out = torch.addmm(b, torch.clamp(net, lo, hi, out=clamped), w.T)
    return out.view(M, K, 3)


def _fused_eval_forward(kernel: ModuleType, model: ScoreNet, offsets: torch.Tensor,
                        cond: list[torch.Tensor], last: nn.Conv1d, tile: int = _FUSED_TILE
                        ) -> torch.Tensor:
    """Inference-mode score net in the fused int8 kernel, codes per ``tile`` rows of the M * K
    offsets: offsets (M, K, 3) -> (M, K, 3)."""
    M, K, _ = offsets.shape
    convs = [model.conv_p] + [b.fc_c for b in model.blocks]
    wxyz = torch.stack([_split_conv(conv, 3)[0].T for conv in convs]).contiguous()
    aff, w0, b0 = [], [], []
    for block in model.blocks:
        aff.append(torch.stack(_bn_affine(block.bn_0)))
        s1, t1 = _bn_affine(block.bn_1)  # bn_1 folded into fc_0's rows
        w0.append(block.fc_0.weight[..., 0] * s1[:, None])
        b0.append(block.fc_0.bias * s1 + t1)
    w1 = torch.stack([b.fc_1.weight[..., 0] for b in model.blocks]).contiguous()
    b1 = torch.stack([b.fc_1.bias for b in model.blocks])
    out = kernel.score_net_int8(
        offsets.reshape(M * K, 3).contiguous(), K, [c.contiguous() for c in cond], wxyz,
        torch.stack(aff), torch.stack(w0), torch.stack(b0), w1, b1,
        torch.stack(_bn_affine(model.bn_out)), last.weight[..., 0].contiguous(),
        last.bias.contiguous(), tile)
    return out.view(M, K, 3)


def _int8_product(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``a @ weight.T`` for a >= 0 (R, C) and weight (O, C) by int8 x int8 -> int32: (R, O).

    Each activation channel is coded over all 256 int8 values, ``round(a / s) - 128`` with s =
    the channel's maximum / 255 (a ReLU's output has no negative half to spend codes on); s is
    folded into weight's columns, coded symmetrically per output channel, and the zero point
    returns exactly as 128 x the codes' column sums (int32 sums stay below 2**24, so exact in
    float32). The weights' rounding is the same for every row, so it is corrected to first order
    at the activations' mean (bias correction), which halves the denoised points' deviation.
    """
    a_scale = a.amax(0).clamp_min(1e-30) / 255.0
    folded = weight * a_scale
    w_scale = folded.abs().amax(1, keepdim=True).clamp_min(1e-30) / 127.0
    w_codes = torch.round(folded / w_scale)
    correction = (a.mean(0) / a_scale) @ (folded - w_codes * w_scale).T
    w_int = w_codes.to(torch.int8).T.contiguous()
    a_codes = (torch.round(a / a_scale) - 128).to(torch.int8)
    acc = torch._int_mm(a_codes, w_int) + 128 * w_int.sum(0, dtype=torch.int32)
    return acc.float() * w_scale.T + correction


def _train_forward(net: ScoreNet, offsets: torch.Tensor, cond: list[torch.Tensor],
                   last: nn.Conv1d) -> torch.Tensor:
    """Training-mode score net: offsets (M, K, 3), ``cond`` from ``condition`` -> (M, K, 3).

    Rows x channels: every 1x1 conv is one GEMM on (M*K, C) and BatchNorm1d normalises each
    channel over all M*K rows, exactly the statistics of the (1, C, M*K) conv layout, without
    the transposed copies that layout costs around every conv.
    """
    M, K, _ = offsets.shape
    off = offsets.reshape(M * K, 3)
    convs = [net.conv_p] + [b.fc_c for b in net.blocks]
    w_xyz = [_split_conv(conv, 3)[0] for conv in convs]

    def term(j: int) -> torch.Tensor:
        return (off @ w_xyz[j].T).view(M, K, -1).add(cond[j].unsqueeze(1)).view(M * K, -1)

    x = term(0)
    for j, block in enumerate(net.blocks):
        h = F.linear(torch.relu(block.bn_0(x)), block.fc_0.weight[..., 0], block.fc_0.bias)
        h = F.linear(torch.relu(block.bn_1(h)), block.fc_1.weight[..., 0], block.fc_1.bias)
        x = x + h + term(j + 1)
    out = F.linear(torch.relu(net.bn_out(x)), last.weight[..., 0], last.bias)
    return out.view(M, K, 3)


@functools.cache
def _compiled_train_forward() -> Callable[..., torch.Tensor]:
    # built on first use: importing torch._dynamo costs seconds that inference never needs
    return torch.compile(_train_forward, dynamic=False)


@functools.cache
def _compiled_eval_forward() -> Callable[..., torch.Tensor]:
    # the last batch of patches of a cloud is smaller: sizes vary, so the graph is dynamic
    return torch.compile(_eval_forward, dynamic=True)


def _bn_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _relu_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, ...]:
    """``relu(bn(x)) == clamp(x, lo, hi) * scale + shift`` per channel (eval mode).

    With ``bn(x) = s x + b``: for s > 0, relu(s x + b) = s max(x, -b/s) + b; for s < 0 it is
    s min(x, -b/s) + b; for s = 0 it is relu(b). The clamp is one pass over memory, and the
    scale and shift fold into the 1x1 conv that follows.
    """
    s, b = _bn_affine(bn)
    edge = -b / torch.where(s == 0, torch.ones_like(s), s)
    inf = torch.full_like(s, float("inf"))
    lo = torch.where(s > 0, edge, torch.where(s < 0, -inf, torch.zeros_like(s)))
    hi = torch.where(s < 0, edge, torch.where(s > 0, inf, torch.zeros_like(s)))
    return lo, hi, s, torch.where(s == 0, b.relu(), b)


def _fold(conv: nn.Conv1d, scale: torch.Tensor, shift: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``conv(x * scale + shift)`` as one affine map of ``x``."""
    w = conv.weight[..., 0]
    return w * scale, conv.bias + w @ shift


@dataclass(frozen=True)
class LossSettings:
    """The reference's supervised score-matching loss: ``num_points`` frames of ``frame_knn``
    noisy points, targets from ``clean_neighbours`` clean points, scaled by ``sigma``."""

    num_points: int = 128
    frame_knn: int = 32
    clean_neighbours: int = 4
    sigma: float = 0.01


class ScoreDenoiseNet(nn.Module):
    """Feature extraction + score network (187,291 parameters with the default sizes).

    Calling the module computes the training loss (so DistributedDataParallel sees the whole
    forward pass); denoising uses the two sub-networks directly.
    """

    def __init__(self, knn_backend: str = "auto", compiled_training: bool = False,
                 loss: LossSettings | None = None, compiled_inference: bool = False,
                 training_precision: TrainingPrecision = "float32") -> None:
        super().__init__()
        self.knn_backend = knn_backend
        self.loss_settings = loss or LossSettings()
        self.feature_net = FeatureExtraction(backend=knn_backend)
        self.score_net = ScoreNet(self.feature_net.out_channels,
                                  compiled_training=compiled_training,
                                  compiled_inference=compiled_inference,
                                  training_precision=training_precision)

    @property
    def output_layer(self) -> nn.Module:
        """The layer mapping features to scores (trained at its own rate, ``job.output_lr``)."""
        return self.score_net.conv_out

    def forward(self, noisy: torch.Tensor, clean: torch.Tensor, generator: torch.Generator,
                **overrides: float) -> torch.Tensor:
        """Supervised score-matching loss of (B, P, 3) noisy and (B, Q, 3) clean patches
        (settings: :class:`LossSettings`, fields overridable per call)."""
        from pcdkit.backbones.score_denoise.loss import supervised_loss

        settings = dataclasses.replace(self.loss_settings, **overrides)
        return supervised_loss(self, noisy, clean, generator, backend=self.knn_backend,
                               **dataclasses.asdict(settings))
