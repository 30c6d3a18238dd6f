"""Benchmark: the score network's hidden layer in float32, bfloat16 and int8 (issue 14's levers).

Run: ``python benchmarks/products.py [--rows 32768] [--repeats 20] [--threads 1]``. A hidden
layer of the score network is ``relu(batchnorm(x)) @ W`` with x of shape (rows, 128) and W of
(128, 128); denoising feeds 8 patches x 1000 centres x 4 frames = 32768 rows per call. Measured
in one process, each variant compiled by torch.compile (the fast preset's form) and the bare
products beside them:

- float32: the baseline (the faithful preset's arithmetic);
- bfloat16: inputs cast in the fused element-wise pass, AVX512-BF16 product (the fast preset);
- int8, dynamic: symmetric per-row scales of the activation (a row maximum per call),
  per-column scales of W, ``torch._int_mm`` (AVX512-VNNI), dequantised;
- int8, per-channel (what ``matmul_precision: int8`` runs): per-channel activation scales
  from the channel maxima of each call with a zero point, folded into W, and the weights'
  rounding corrected at the activations' mean (``_int8_product``);
- int8, static: fixed per-channel activation scales (calibrated once, here on the input
  itself) folded into W's rows, so the element-wise pass only rounds (no reduction);
- int8, oneDNN: u8 codes of one scale per call (the activation's maximum) and oneDNN's fused
  int8 linear (``torch.ops.onednn.qlinear_pointwise``, what PT2E quantisation lowers to on
  x86), which dequantises into its float32 output itself.

Columns: best-of-``repeats`` milliseconds, time relative to float32, and the relative
Frobenius error of the layer's output against float64.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_ms

from pcdkit.backbones.score_denoise.model import _int8_product


def _codes(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 codes of ``x`` at ``scale`` (broadcast): x ~ codes * scale."""
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8)


def _column_codes(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, K) -> int8 codes and (1, K) per-column scales of ``w``."""
    scale = w.abs().amax(dim=0, keepdim=True).clamp_min(1e-12) / 127.0
    return _codes(w, scale), scale


def main() -> None:
    """Print a Markdown table of layer times and errors."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.rows, 128, generator=gen)
    gain = torch.rand(128, generator=gen) + 0.5  # BatchNorm folded to one affine map (eval mode)
    shift = 0.1 * torch.randn(128, generator=gen)
    w = (torch.rand(128, 128, generator=gen) * 2 - 1) / 128 ** 0.5
    exact = torch.relu(x.double() * gain + shift) @ w.double()

    wb, wt = w.bfloat16(), w.T.contiguous()
    qw, sw = _column_codes(w)
    h = torch.relu(x * gain + shift)  # the layer's product input, for the bare products
    act_scale = h.amax(0).clamp_min(1e-12) / 127.0
    qws, sws = _column_codes(act_scale[:, None] * w)  # static scales folded into W's rows
    gain_s, shift_s = gain / act_scale, shift / act_scale

    def f32(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * gain + shift) @ w

    def bf16(x: torch.Tensor) -> torch.Tensor:
        return (torch.relu(x * gain + shift).bfloat16() @ wb).float()

    def int8_dynamic(x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(x * gain + shift)
        sx = h.amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        return torch._int_mm(_codes(h, sx), qw).float() * sx * sw

    def int8_dynamic_channel(x: torch.Tensor) -> torch.Tensor:
        return _int8_product(torch.relu(x * gain + shift), wt)

    def int8_static(x: torch.Tensor) -> torch.Tensor:
        q = torch.round(torch.relu(x * gain_s + shift_s)).clamp(max=127).to(torch.int8)
        return torch._int_mm(q, qws).float() * sws

    # oneDNN's fused int8 linear (what PT2E quantisation lowers to on x86): u8 activation codes
    # of one per-call scale (ReLU output: zero point 0), s8 weights per output channel, the
    # float32 result written by the kernel itself
    # W's per-column codes (qw, sw above) are per output channel in oneDNN's (out, in) layout
    packed = torch.ops.onednn.qlinear_prepack(qw.T.contiguous(), [args.rows, 128])
    w_scale, w_zero = sw.reshape(-1), torch.zeros(128, dtype=torch.long)
    x_zero = torch.zeros((), dtype=torch.long)

    @torch.compiler.disable  # inductor lowers this op only for frozen (constant) weights
    def qlinear(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return torch.ops.onednn.qlinear_pointwise.tensor(
            codes, scale, x_zero, packed, w_scale, w_zero, None, 1.0, 0, torch.float32, "none",
            [], "")

    def int8_onednn(x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(x * gain + shift)
        scale = a.amax().clamp_min(1e-30) / 255.0
        return qlinear(torch.round(a / scale).to(torch.uint8), scale)

    u8_scale = h.amax() / 255.0
    u8 = torch.round(h / u8_scale).to(torch.uint8)
    xb = h.bfloat16()
    qx = _codes(h, act_scale)
    bare = {"float32 product alone": lambda: x @ w, "bfloat16 product alone": lambda: xb @ wb,
            "int8 -> int32 product alone": lambda: torch._int_mm(qx, qws),
            "oneDNN int8 linear alone (u8 x s8 -> float32)": lambda: qlinear(u8, u8_scale)}
    layers = {"float32 (baseline)": f32, "bfloat16": bf16, "int8, dynamic per-row scales":
              int8_dynamic, "int8, per-channel scales + bias correction (matmul_precision int8)":
              int8_dynamic_channel, "int8, static per-channel scales folded into W": int8_static,
              "int8, oneDNN fused linear, one scale per call": int8_onednn}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), layer "
          f"relu(affine(x)) @ W, x ({args.rows} x 128), W (128 x 128), compiled\n")
    print("| variant | ms | time vs float32 layer | relative error vs float64 |")
    print("|---|---|---|---|")
    base = None
    for name, fn in layers.items():
        compiled = torch.compile(fn)
        ms = best_ms(lambda: compiled(x), args.repeats)  # noqa: B023 - timed right here
        base = base or ms
        err = ((compiled(x).double() - exact).norm() / exact.norm()).item()
        print(f"| {name} | {ms:.2f} | {ms / base:.2f} | {err:.1e} |", flush=True)
    for name, fn in bare.items():
        ms = best_ms(fn, args.repeats)
        print(f"| {name} | {ms:.2f} | {ms / base:.2f} | |", flush=True)


if __name__ == "__main__":
    main()
