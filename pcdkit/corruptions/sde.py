"""Forward SDEs ``dx = a(x, t) dt + b(x, t) dW`` simulated by Euler-Maruyama (IGO eq. 4).

Every sample gets its own end time ``t ~ U(t_min, t_max)`` (seeded) and ``steps`` equal steps of
``dt = t / steps``; the iterates at ``tau * t`` for each requested fraction ``tau`` (IGO's
intermediate iterates, eq. 7; default ``tau = 1/2``) are returned with the final one. A user
process needs only a drift and a diffusion function: subclass :class:`EulerMaruyama` or wrap two
functions with :func:`from_functions`.

Score training needs a target. With ``kernel=True`` the simulation also runs the noise-free path
``m`` (same drift, no noise) and sums the injected variance ``v = sum_k b_k^2 dt``; the target
for ``x`` is ``-(x - m) / v``. For a drift-free process this is exactly the denoising-score-
matching target of ``p(x_t | x_0)``; with a drift it is the score of the Gaussian that the
injected noise alone would give, an approximation (the drift also reshapes the noise) that the
IGO paper leaves unspecified.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pcdkit.corruptions.base import Corrupted, Corruption, check_taus, randn, randn_like

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against ``like``."""
    return t.view(-1, *([1] * (like.dim() - 1)))


class EulerMaruyama(Corruption):
    """Euler-Maruyama simulation of a forward SDE with intermediate iterates.

    Subclasses define :meth:`drift` and :meth:`diffusion` (a tensor broadcastable to ``x``:
    scalar, per-sample or per-element standard deviation rate). ``t`` is passed per sample,
    shaped (B, 1, ..., 1). Input contract: a batch (B, *sample); with ``event_dims`` set (2 for
    (N, 3) point clouds), an input of exactly that many dimensions is one sample, not a batch
    of rows (each of which would get its own end time). A process whose fields need per-call
    context (the clean input, a cloud's scale) overrides :meth:`bind`.
    """

    def __init__(self, t_min: float = 1e-3, t_max: float = 1.0, steps: int = 100,
                 event_dims: int | None = None) -> None:
        if not 0 <= t_min <= t_max:
            raise ValueError(f"need 0 <= t_min <= t_max, got {t_min}, {t_max}")
        self.t_min, self.t_max, self.steps = t_min, t_max, steps
        self.event_dims = event_dims

    def bind(self, x0: torch.Tensor) -> EulerMaruyama:
        """The process whose fields run for the batch ``x0``: ``self``, or a copy carrying
        per-call context (never state on ``self``: one process object serves every call)."""
        return self

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """a(x, t)."""
        return torch.zeros_like(x)

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """b(x, t)."""
        raise NotImplementedError

    def sample_t(self, batch: int, generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
        """Per-sample end times, uniform in [t_min, t_max]."""
        dev = generator.device if generator is not None else device
        u = torch.rand(batch, generator=generator, device=dev).to(device)
        return self.t_min + (self.t_max - self.t_min) * u

    def step_of(self, frac: float) -> int:
        """The Euler-Maruyama step at which the iterate of fraction ``frac`` is recorded."""
        return self.steps if frac >= 1.0 else min(max(1, round(frac * self.steps)),
                                                   self.steps - 1)

    def kernel_score(self, e: torch.Tensor, t: torch.Tensor, frac: float,
                     variance: torch.Tensor) -> torch.Tensor:
        """Score of the Gaussian of the injected noise ``e = x - m`` at ``frac`` of ``t``.

        Default: ``-e / v`` with ``v`` the injected variance, exact for drift-free processes;
        processes with a linear drift can return the exact ``-Sigma^-1 e`` instead.
        """
        return -e / _per_sample(variance, e)

    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
        """A draw of the injected noise at ``t_max``: N(0, kernel_std(t_max)^2 I) by default."""
        t1 = torch.full((shape[0],), self.t_max, device=device)
        z = randn(shape, generator, t1)
        return z * _per_sample(self.kernel_std(t1), z)

    def kernel_std(self, t: torch.Tensor) -> torch.Tensor:
        """sqrt(sum_k b(t_k)^2 dt) on the simulation grid, (B,), for state-independent b."""
        dt = t / self.steps
        var = torch.zeros_like(t)
        probe = torch.zeros(t.shape[0], 1, device=t.device, dtype=t.dtype)
        for k in range(self.steps):
            b = self.diffusion(probe, (t * (k / self.steps))[:, None])
            var = var + (b**2).reshape(t.shape[0], -1).mean(1) * dt
        return var.sqrt()

    def __call__(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
        taus: Sequence[float] = (0.5,), t: torch.Tensor | None = None, kernel: bool = False,
    ) -> Corrupted:
        taus = check_taus(taus)
        if self.event_dims is not None and x0.dim() == self.event_dims:
            out = self(x0.unsqueeze(0), generator=generator, taus=taus, t=t, kernel=kernel)
            first = {k: v[0] for k, v in out.intermediates.items()}
            return Corrupted(out.x_t[0], out.t, first, {k: v[0] for k, v in out.means.items()},
                             out.variances)
        proc = self.bind(x0)
        t = self.sample_t(x0.shape[0], generator, x0.device) if t is None else t
        dt = _per_sample(t / self.steps, x0)
        record = {self.step_of(tau): tau for tau in taus}
        record[self.steps] = 1.0
        x, m, var = x0, x0, torch.zeros_like(t)
        out = Corrupted(x_t=x0, t=t)
        for k in range(self.steps):
            tk = _per_sample(t * (k / self.steps), x0)
            b = proc.diffusion(x, tk)
            x = x + proc.drift(x, tk) * dt + b * dt.sqrt() * randn_like(x0, generator)
            if kernel:
                m = m + proc.drift(m, tk) * dt
                var = var + (b.expand_as(x) ** 2).reshape(len(t), -1).mean(1) * dt.flatten()
            if k + 1 in record:
                out.record(record[k + 1], x, *((m, var) if kernel else ()))
        return out


class _Functional(EulerMaruyama):
    def __init__(self, drift: Field, diffusion: Field, **kw: Any) -> None:
        super().__init__(**kw)
        self._drift, self._diffusion = drift, diffusion
        self._x0: torch.Tensor | None = None  # set on bound copies only

    def bind(self, x0: torch.Tensor) -> EulerMaruyama:
        bound = copy.copy(self)
        bound._x0 = x0
        return bound

    def _call(self, f: Callable[..., torch.Tensor], x: torch.Tensor, t: torch.Tensor
              ) -> torch.Tensor:
        return f(x, t, self._x0) if _arity(f) >= 3 else f(x, t)

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._call(self._drift, x, t)

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._call(self._diffusion, x, t)


def _arity(f: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def from_functions(drift: Callable[..., torch.Tensor], diffusion: Callable[..., torch.Tensor], *,
                   t_min: float = 1e-3, t_max: float = 1.0, steps: int = 100,
                   event_dims: int | None = None) -> EulerMaruyama:
    """A corruption process from two functions ``f(x, t) -> tensor`` or ``f(x, t, x0)`` (which
    also see the clean batch ``x0``, e.g. for its scale); ``event_dims`` as in
    :class:`EulerMaruyama` (2: an (N, 3) cloud is one sample)."""
    return _Functional(drift, diffusion, t_min=t_min, t_max=t_max, steps=steps,
                       event_dims=event_dims)
