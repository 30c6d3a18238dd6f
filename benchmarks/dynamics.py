"""Benchmark: steps per second of the train-dynamics step on rotating MNIST, a baseline revision
against today's.

Run (from a git checkout): ``python benchmarks/dynamics.py [--root MNIST_IDX_FOLDER]
[--baseline REV] [--models node me-node-igo] [--steps 8] [--threads 1]``. Every variant trains its
own copy of one randomly initialised model (same weights) with Adam on the same batches (25
sequences of 20 frames; the encoder sees each of the first 10 frames with probability 0.5, the
first always, as the job draws them), with the recipe of ``training/dynamics-seeds/rotmnist.yaml``
(one z0 and w sample, z0 std x 0.1, time in frame units), in one process, alternating variants
per step so that load on the machine hits all of them alike. Columns: seconds per step (median),
steps per second, speed-up over the baseline, and the first batch's loss relative to the
baseline's.

The baseline is pcdkit's ``me_node.py`` and ``encoders.py`` at ``REV`` (default ``2af8ad4``: every
frame through the frame encoder, channels-first convolutions), read with ``git show``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch
from baseline import module_at

from pcdkit.datasets.rotating_mnist import rotating_mnist

SHARED_MNIST = Path(__file__).resolve().parents[1] / "../shared/data/dynamics/mnist_kelas"


def _baseline_me_node(rev: str, folder: Path) -> ModuleType:
    """``pcdkit.dynamics.me_node`` as it was at ``rev``, with that revision's encoders."""
    module_at(rev, "pcdkit/dynamics/encoders.py", "baseline_encoders", folder)
    return module_at(rev, "pcdkit/dynamics/me_node.py", "baseline_me_node", folder,
                     (("pcdkit.dynamics.encoders", "baseline_encoders"),))


def _batches(root: Path, count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = rotating_mnist(root, sequences=25 * count, frames=20, cache=False)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        keep = torch.rand(25, 20, generator=gen) < 0.5
        keep[:, 0] = True
        keep[:, 10:] = False
        out.append((data.values[25 * i: 25 * (i + 1)], keep.float()))
    return out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SHARED_MNIST, help="MNIST idx folder")
    parser.add_argument("--baseline", default="2af8ad4")
    parser.add_argument("--models", nargs="+", default=["node", "me-node-igo"],
                        choices=["node", "me-node", "me-node-igo"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from pcdkit.dynamics import me_node as today

    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_me_node(args.baseline, Path(tmp))
        batches = _batches(args.root.resolve(), args.steps + 2, seed=0)
        times = torch.arange(20, dtype=torch.float32)  # frame units
        print(f"train-dynamics step, rotating MNIST 25 x 20 frames, {args.threads} thread(s), "
              f"median of {args.steps} steps after 2 warm-up steps")
        print(f"{'model':<12} {'variant':<10} {'s/step':>8} {'steps/s':>8} {'speed-up':>9} "
              f"{'loss rel':>9}")
        for kind in args.models:
            settings = {"n_z0": 1, "n_w": 1, "z0_std_scale": 0.1, "igo": kind == "me-node-igo",
                        "mixed_effect": kind != "node"}
            torch.manual_seed(0)
            reference = base.MixedEffectNODE((1, 28, 28), **settings)
            runs = {}
            for name, module in (("baseline", base), ("today", today)):
                model = module.MixedEffectNODE((1, 28, 28), **settings)
                model.load_state_dict(copy.deepcopy(reference.state_dict()))
                runs[name] = (model, torch.optim.Adam(model.parameters(), 1e-3), [], [])
            for x, mask in batches:
                for model, opt, seconds, losses in runs.values():
                    start = time.perf_counter()
                    loss, _ = model.loss(x, mask, times, 1.0, 1600, torch.Generator())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    seconds.append(time.perf_counter() - start)
                    losses.append(loss.item())
            base_time = statistics.median(runs["baseline"][2][2:])
            base_loss = runs["baseline"][3][0]
            for name, (_, _, seconds, losses) in runs.items():
                med = statistics.median(seconds[2:])
                print(f"{kind:<12} {name:<10} {med:8.3f} {1 / med:8.2f} {base_time / med:8.2f}x "
                      f"{abs(losses[0] - base_loss) / abs(base_loss):9.1e}")


if __name__ == "__main__":
    main()
