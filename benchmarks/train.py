"""Benchmark: steps per second of the train-denoiser step, a baseline revision against today's.

Run (from a git checkout): ``python benchmarks/train.py [--baseline REV] [--batch 8 32]
[--steps 5] [--threads 1]``. Every variant trains its own copy of one randomly initialised
network (same weights) with Adam on the same pre-built batches (1000-point noisy / 1200-point
clean patches of the embedded shapes, 128 frames x 32 points, as the job draws them), in one
process, alternating variants per step so that load on the machine hits all of them alike.
Columns: seconds per step (median), steps per second, speed-up over the baseline, and the loss
of the first batch relative to the baseline's, in float32 (rounding can flip a near-tie between
neighbours of the dynamic feature graphs, so ~1e-5 is expected) and in float64 (identical maths:
~1e-15).

The baseline is pcdkit's model and loss at ``REV`` (default: the revision before the training
path was optimised, ``96b10f6``), read with ``git show`` and built with the KD-tree kNN it used
for feature spaces; variants: ``eager`` (today's code), ``eager, bfloat16 products`` (today's
code with ``training_precision: bfloat16``: the score network's products under bfloat16
autocast; its float32 loss differs by bfloat16's rounding, ~1e-3, its float64 check is exact
because autocast leaves float64 alone), ``compiled`` (today's code with ``compiled_training``,
torch.compile's inductor; its compilation is timed separately) and ``compiled, bfloat16
products`` (both).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from baseline import module_at

from pcdkit.backbones.score_denoise.loss import make_training_patches, supervised_loss
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.datasets.procedural import procedural

MODULES = ("model", "loss")


def _batches(batch: int, count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    clouds = [shape.points for shape in procedural(resolution=10_000)]
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        sets = [make_training_patches(clouds[int(torch.randint(len(clouds), (1,),
                                                                 generator=gen))], gen, num=1)
                for _ in range(batch)]
        out.append((torch.cat([p[0] for p in sets]), torch.cat([p[1] for p in sets])))
    return out


def main() -> None:
    """Print a Markdown table of training-step times."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", default="96b10f6", help="git revision of the baseline")
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant and batch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled variant")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        old_model, old_loss = (module_at(args.baseline, f"pcdkit/backbones/score_denoise/{n}.py",
                                          f"baseline_{n}", Path(tmp)) for n in MODULES)
    torch.manual_seed(0)
    base_net = old_model.ScoreDenoiseNet(knn_backend="scipy")
    variants: dict[str, tuple[torch.nn.Module, object]] = {
        f"baseline ({args.baseline})": (base_net, old_loss.supervised_loss)}
    today = {"eager": {}, "eager, bfloat16 products": {"training_precision": "bfloat16"}}
    if not args.no_compile:
        today |= {"compiled": {"compiled_training": True},
                  "compiled, bfloat16 products": {"compiled_training": True,
                                                  "training_precision": "bfloat16"}}
    for name, settings in today.items():  # the baseline's weights in today's network
        net = ScoreDenoiseNet(**settings)
        net.load_state_dict(base_net.state_dict())
        variants[name] = (net, supervised_loss)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    print("| batch | variant | s / step | steps / s | speed-up | loss vs baseline (float32) "
          "| loss vs baseline (float64) |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch:
        data = _batches(batch, args.steps + 1, seed=batch)
        runs = {name: (copy.deepcopy(net).train(), fn) for name, (net, fn) in variants.items()}
        opts = {name: torch.optim.Adam(net.parameters(), lr=1e-4)
                for name, (net, _) in runs.items()}
        times: dict[str, list[float]] = {name: [] for name in runs}
        first: dict[str, float] = {}
        for i, (noisy, clean) in enumerate(data):
            for name, (net, fn) in runs.items():
                gen = torch.Generator().manual_seed(i)  # same frames for every variant
                start = time.perf_counter()
                loss = fn(net, noisy, clean, gen)
                opts[name].zero_grad(set_to_none=True)
                loss.backward()
                opts[name].step()
                elapsed = time.perf_counter() - start
                if i == 0:
                    first[name] = loss.item()
                    if name.startswith("compiled"):
                        print(f"({name}: first step incl. compilation {elapsed:.1f} s)")
                else:
                    times[name].append(elapsed)
        base_name = next(iter(runs))
        base_t = statistics.median(times[base_name])
        exact = _float64_losses(variants, data[0])
        for name in runs:
            t = statistics.median(times[name])
            rel = first[name] / first[base_name] - 1
            rel64 = exact[name] / exact[base_name] - 1
            print(f"| {batch} | {name} | {t:.3f} | {1 / t:.2f} | {base_t / t:.2f}x | "
                  f"{rel:+.1e} | {rel64:+.1e} |", flush=True)


def _float64_losses(variants: dict[str, tuple[torch.nn.Module, object]],
                    batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """Each variant's loss on ``batch`` in float64 (eager), where rounding cannot flip the
    dynamic graphs' near-tied neighbours: the paths must agree to ~1e-15."""
    out = {}
    for name, (net, fn) in variants.items():
        net64 = copy.deepcopy(net).double().train()
        if hasattr(net64.score_net, "compiled_training"):
            net64.score_net.compiled_training = False
        gen = torch.Generator().manual_seed(0)
        out[name] = fn(net64, batch[0].double(), batch[1].double(), gen).item()
    return out


if __name__ == "__main__":
    main()
