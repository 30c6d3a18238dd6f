"""One door to torchdiffeq: solver options checked up front, its failure modes turned into
clear errors with suggested settings instead of a bare AssertionError or silent NaNs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pcdkit.errors import PcdkitError

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5")
FIXED = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams")


class ODEFailure(PcdkitError):
    """The ODE solver failed (step-size underflow, non-finite state, too many steps)."""


class _Counted(torch.nn.Module):
    """Counts function evaluations and stops at the first non-finite derivative."""

    def __init__(self, func: Callable[[torch.Tensor, Any], Any], max_nfe: int | None) -> None:
        super().__init__()
        # a Module assigned as an attribute is registered, so the adjoint sees its parameters
        self.func, self.nfe, self.max_nfe = func, 0, max_nfe

    def forward(self, t: torch.Tensor, y: Any) -> Any:
        self.nfe += 1
        if self.max_nfe is not None and self.nfe > self.max_nfe:
            raise ODEFailure(f"ODE solver exceeded {self.max_nfe} function evaluations at "
                             f"t={float(t):.4g}: the dynamics are stiff; try method: rk4 with "
                             "a fixed step, or looser rtol/atol")
        out = self.func(t, y)
        ys = out if isinstance(out, tuple) else (out,)
        if not all(bool(torch.isfinite(v).all()) for v in ys):
            raise ODEFailure(f"ODE dynamics returned NaN/inf at t={float(t):.4g} (evaluation "
                             f"{self.nfe}); lower the learning rate, clip gradients, or use "
                             "method: rk4 with smaller steps")
        return out


def solve(func: Callable[[torch.Tensor, Any], Any], y0: Any, times: torch.Tensor, *,
          method: str = "rk4", rtol: float = 1e-5, atol: float = 1e-5,
          step_size: float | None = None, adjoint: bool = False,
          max_nfe: int | None = 100_000) -> tuple[Any, int]:
    """``odeint`` over ``times`` (increasing or decreasing); returns (states, evaluations)."""
    from torchdiffeq import odeint, odeint_adjoint

    if method not in ADAPTIVE + FIXED:
        raise PcdkitError(f"ODE method {method!r}: expected one of {', '.join(ADAPTIVE + FIXED)}")
    if adjoint and not isinstance(func, torch.nn.Module):
        raise PcdkitError("adjoint: the dynamics must be a torch.nn.Module")
    counted = _Counted(func, max_nfe)
    options = {"step_size": step_size} if step_size is not None and method in FIXED else None
    solver = odeint_adjoint if adjoint else odeint
    try:
        out = solver(counted, y0, times, rtol=rtol, atol=atol, method=method, options=options)
    except AssertionError as exc:
        if "underflow in dt" in str(exc):
            raise ODEFailure(f"adaptive ODE solver {method}: step size underflow ({exc}); the "
                             "dynamics are stiff or blew up. Try method: rk4 (fixed step), "
                             "looser rtol/atol, a lower learning rate or weight decay") from None
        raise
    return out, counted.nfe
