"""Model-free baselines for interpolation and extrapolation on panel data.

Each predicts the scored frames of :func:`pcdkit.jobs.train_dynamics.window_masks` from the
frames the encoder would see, per subject and per dimension:
- ``last``: the latest seen frame at or before the query time (the first seen frame before it);
- ``mean``: the mean of the seen frames;
- ``linear``: for interpolation, linear interpolation between the two seen frames around the
  query time (``numpy.interp``: past the last seen frame, that frame); for extrapolation, the
  least-squares straight line through all seen frames, evaluated at the query time;
- ``regression`` (:func:`regression_mse`): a ridge-regularised linear map from all seen frames
  to all scored frames, fitted on the *training* subjects (the strongest linear predictor).
"""

from __future__ import annotations

import torch


def predict(kind: str, values: torch.Tensor, times: torch.Tensor, seen: torch.Tensor,
            scored: torch.Tensor, task: str) -> torch.Tensor:
    """Predicted frames (S, Q, *frame) at the scored times from the seen ones."""
    x = values.flatten(2).double()  # (S, T, D)
    ts, tq = times[seen].double(), times[scored].double()
    xs = x[:, seen]
    if kind == "mean":
        out = xs.mean(1, keepdim=True).expand(-1, len(tq), -1)
    elif kind == "last":
        out = xs[:, (torch.searchsorted(ts, tq, right=True) - 1).clamp_min(0)]
    elif kind == "linear" and task == "interp":
        right = torch.searchsorted(ts, tq).clamp(1, len(ts) - 1)
        left = right - 1
        w = ((tq - ts[left]) / (ts[right] - ts[left])).clamp(0, 1)[None, :, None]
        out = xs[:, left] * (1 - w) + xs[:, right] * w if len(ts) > 1 else xs[:, :1].expand(
            -1, len(tq), -1)
    elif kind == "linear":
        design = torch.stack([torch.ones_like(ts), ts], 1)  # (Ts, 2)
        coef = torch.linalg.pinv(design) @ xs  # (S, 2, D)
        out = torch.stack([torch.ones_like(tq), tq], 1) @ coef
    else:
        raise ValueError(f"baseline {kind!r}: expected last, mean or linear")
    return out.to(values.dtype).reshape(len(values), len(tq), *values.shape[2:])


def baseline_mse(values: torch.Tensor, times: torch.Tensor,
                 masks: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """``{kind}_{task}_mse`` for every baseline and every task with scored frames."""
    out = {}
    for task in ("interp", "extrap"):
        seen, scored = masks[task]
        if not scored.any() or not seen.any():
            continue
        truth = values[:, scored]
        for kind in ("last", "mean", "linear"):
            pred = predict(kind, values, times, seen, scored, task)
            out[f"{kind}_{task}_mse"] = float(((pred - truth) ** 2).mean())
    return out


def regression_mse(train: torch.Tensor, test: torch.Tensor,
                   masks: dict[str, tuple[torch.Tensor, torch.Tensor]],
                   ridge: float = 1e-3) -> dict[str, float]:
    """``regression_{task}_mse``: ridge least squares from seen to scored frames, fitted on
    ``train`` (S, T, *frame) and scored on ``test``; ``ridge`` is relative to the mean squared
    feature. Solved in the dual (S x S) when there are more features than subjects (images)."""
    out = {}
    for task in ("interp", "extrap"):
        seen, scored = masks[task]
        if not scored.any() or not seen.any():
            continue
        xs, ys = train[:, seen].flatten(1).double(), train[:, scored].flatten(1).double()
        mu_x, mu_y = xs.mean(0), ys.mean(0)
        xs, ys = xs - mu_x, ys - mu_y
        lam = ridge * float(xs.square().mean()) * max(1, xs.shape[1]) + 1e-12
        if xs.shape[0] < xs.shape[1]:  # W = X^T (X X^T + lam I)^-1 Y
            gram = xs @ xs.T + lam * torch.eye(len(xs), dtype=xs.dtype)
            weights = xs.T @ torch.linalg.solve(gram, ys)
        else:  # W = (X^T X + lam I)^-1 X^T Y
            gram = xs.T @ xs + lam * torch.eye(xs.shape[1], dtype=xs.dtype)
            weights = torch.linalg.solve(gram, xs.T @ ys)
        pred = (test[:, seen].flatten(1).double() - mu_x) @ weights + mu_y
        truth = test[:, scored].flatten(1).double()
        out[f"regression_{task}_mse"] = float(((pred - truth) ** 2).mean())
    return out
