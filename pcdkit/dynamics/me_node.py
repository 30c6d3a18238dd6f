"""Mixed-effect neural ODE (ME-NODE, Nazarovs et al. 2021), its IGO extension, and plain NODE.

Generative model: ``z0 ~ q(z0 | x_obs)`` from the ODE-RNN encoder, a mixed effect
``w ~ q(w) = N(mu, softplus(rho) + 1e-8)`` (global, learned; prior N(0, 1); a fresh draw per
subject and sample), latent dynamics ``dz/dt = D(z) * w`` with D an MLP (latents -> 100 -> 100
-> latents, Tanh; autonomous), solved with torchdiffeq on the data grid (rk4 by default), and a
decoder per time. Loss: ``kl_coef * (KL(z0) + KL(w) / N) - log p(x | z)`` with a Gaussian
likelihood (obs std 1e-3, averaged over time x dims) and best-of-K samples (``n_z0 x n_w``).
``mixed_effect=False`` gives the NODE baseline (``dz/dt = D(z)``).

IGO extension (paper 4.2: "D(z_t, z_tau) through a network f"); pcdkit's concrete reading, since
the paper gives no equations: the intermediate iterate ``z_tau(t) = z~(tau t)`` follows the shared
dynamics at rate tau (``dz_tau/dt = tau D(z_tau) * w``, both start at z0), and the main dynamics
see it through a light encoder E_tau: ``f(z_t, z_tau) = D(z_t + E_tau(z_tau)) * w`` with E_tau a
zero-initialised latents x latents linear map (so training starts from ME-NODE). Both states are
integrated together by torchdiffeq. The loss is ``alpha * L(x_t) + (1 - alpha) * L(x_tau)``,
where L(x_tau) compares the decoded z_tau(t_i) with the frame observed at time tau t_i (frames
where tau t_i falls on the grid). Extra parameters: latents^2 + latents, i.e. O(1) per tau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pcdkit.corruptions.base import randn
from pcdkit.dynamics.encoders import FrameDecoder, FrameEncoder, ODERNNEncoder, mlp
from pcdkit.errors import PcdkitError
from pcdkit.ode import solve

LOG_2PI = math.log(2 * math.pi)


@dataclass
class Prediction:
    """Decoded frames (K, B, T, *frame) and, for IGO, the intermediate pathway's frames."""

    frames: torch.Tensor
    intermediate: torch.Tensor | None = None


class _Dynamics(nn.Module):
    """dz/dt (and dz_tau/dt) for a batch of K x B latent states, with mixed effects ``w``.

    ``w`` travels in the ODE state, ``(z, w)`` with dw/dt = 0, never as an attribute: the
    adjoint method integrates backwards after the forward solve has returned, and must see the
    same ``w`` (and give its gradient).
    """

    def __init__(self, latents: int, units: int, igo: bool, tau: float) -> None:
        super().__init__()
        self.net = mlp([latents, units, units, latents])
        self.latents, self.tau = latents, tau
        self.e_tau = nn.Linear(latents, latents) if igo else None
        if self.e_tau is not None:
            nn.init.zeros_(self.e_tau.weight)
            nn.init.zeros_(self.e_tau.bias)

    def forward(self, t: torch.Tensor, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Derivative of ``z`` (K, B, L[x2]) or of ``(z, w)`` with w (K, B, me_dim)."""
        if isinstance(state, tuple):
            z, w = state
            return self._dz(z, w), torch.zeros_like(w)
        return self._dz(state, 1.0)

    def _dz(self, state: torch.Tensor, w: torch.Tensor | float) -> torch.Tensor:
        if self.e_tau is None:
            return self.net(state) * w
        z, z_tau = state.split(self.latents, -1)
        return torch.cat([self.net(z + self.e_tau(z_tau)) * w,
                          self.tau * self.net(z_tau) * w], -1)


class MixedEffectNODE(nn.Module):
    """ME-NODE / NODE / ME-NODE+IGO for vector (D,) or image (1, 28, 28) observations."""

    def __init__(self, frame_shape: tuple[int, ...], latents: int = 13, rec_dims: int = 20,
                 gru_units: int = 100, units: int = 100, mixed_effect: bool = True,
                 me_dim: int = 1, igo: bool = False, tau: float = 0.5, alpha: float = 0.8,
                 obs_std: float = 1e-3, n_z0: int = 3, n_w: int = 3, method: str = "rk4",
                 rtol: float = 1e-5, atol: float = 1e-5, adjoint: bool = False,
                 z0_std_scale: float = 1.0, igo_weights: bool = False) -> None:
        super().__init__()
        self.frame_shape = tuple(frame_shape)
        # q(z0)'s std is the encoder's times this: < 1 starts with samples near the mean, so
        # the decoder sees distinguishable subjects from the first steps
        self.z0_std_scale = z0_std_scale
        self.images = len(self.frame_shape) == 3
        if self.images and self.frame_shape != (1, 28, 28):
            raise PcdkitError(f"model: image frames must be 1 x 28 x 28, got {frame_shape}")
        if me_dim not in (1, latents):
            raise PcdkitError(f"model.me_dim: expected 1 or latents ({latents}), got {me_dim}")
        if not 0.0 < tau < 1.0 or not 0.0 <= alpha <= 1.0:
            raise PcdkitError(f"model: need 0 < tau < 1 and 0 <= alpha <= 1, got {tau}, {alpha}")
        if igo and igo_weights:
            raise PcdkitError("model: igo_weights is the control for igo (ME-NODE with IGO's "
                              "frame weights); set one of them, not both")
        self.latents, self.mixed_effect, self.igo = latents, mixed_effect, igo
        # IGO's loss at initialisation (E_tau = 0, so z_tau(t_i) = z(tau t_i)) is the plain
        # loss with the frames at tau t_i counted again with weight 1 - alpha: the control
        # trains ME-NODE on exactly that, to separate the re-weighting from the iterate
        self.igo_weights = igo_weights
        self.tau, self.alpha, self.obs_std = tau, alpha, obs_std
        self.n_z0, self.n_w = n_z0, n_w if mixed_effect else 1
        self.solver = {"method": method, "rtol": rtol, "atol": atol, "adjoint": adjoint}
        if self.images:
            self.frame_encoder: nn.Module = FrameEncoder(latents)
            self.decoder: nn.Module = FrameDecoder(latents)
            enc_in = latents
        else:
            self.frame_encoder = nn.Identity()
            self.decoder = nn.Linear(latents, self.frame_shape[0])
            enc_in = self.frame_shape[0]
        self.encoder = ODERNNEncoder(enc_in, latents, rec_dims, gru_units)
        self.dynamics = _Dynamics(latents, units, igo, tau)
        if mixed_effect:
            self.w_mu = nn.Parameter(torch.rand(me_dim))
            self.w_rho = nn.Parameter(-torch.rand(me_dim) - 3)

    # -- pieces ----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z0 | frames where ``mask`` is 1): mean, std (B, latents)."""
        seen = mask > 0
        # Only seen frames are encoded: the ODE-RNN discards the rest, and the frame encoder is
        # most of an image model's encoding cost (training sees about a quarter of the frames).
        codes = self.frame_encoder(x[seen])
        feats = codes.new_zeros(*x.shape[:2], codes.shape[-1]).index_put((seen,), codes)
        mean, std = self.encoder(feats, mask.to(feats.dtype), times)
        return mean, std * self.z0_std_scale

    def w_posterior(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """q(w) mean and std, or None without a mixed effect."""
        if not self.mixed_effect:
            return None
        return self.w_mu, nn.functional.softplus(self.w_rho) + 1e-8

    def latent_path(self, z0: torch.Tensor, w: torch.Tensor | None, times: torch.Tensor
                    ) -> torch.Tensor:
        """Latent states (K, B, T, L) at ``times`` from (K, B, L) initial states (with IGO, the
        intermediate pathway's states follow in the last dimension: L = 2 x latents)."""
        state = torch.cat([z0, z0], -1) if self.igo else z0
        if w is None:
            path, _ = solve(self.dynamics, state, times, **self.solver)  # (T, K, B, L[2])
        else:
            (path, _), _ = solve(self.dynamics, (state, w.expand(*state.shape[:2], -1)), times,
                                 **self.solver)
        return path.permute(1, 2, 0, 3)

    def decode_path(self, z0: torch.Tensor, w: torch.Tensor | None, times: torch.Tensor,
                    intermediate_at: torch.Tensor | None = None) -> Prediction:
        """Integrate (K, B, latents) initial states over ``times`` (from times[0]) and decode;
        with IGO, the intermediate pathway is decoded at ``intermediate_at`` (default: all)."""
        path = self.latent_path(z0, w, times)

        def dec(z: torch.Tensor) -> torch.Tensor:
            k, b, t = z.shape[:3]
            return self.decoder(z.reshape(-1, self.latents)).reshape(k, b, t, *self.frame_shape)

        if not self.igo:
            return Prediction(dec(path))
        z, z_tau = path.split(self.latents, -1)
        if intermediate_at is not None:
            z_tau = z_tau[:, :, intermediate_at]
        return Prediction(dec(z), dec(z_tau))

    # -- training --------------------------------------------------------------------------
    def loss(self, x: torch.Tensor, obs_mask: torch.Tensor, times: torch.Tensor,
             kl_coef: float, n_subjects: int, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO (best of K samples) on frames x (B, T, *frame); the encoder sees the
        frames where ``obs_mask`` (B, T) is 1, the likelihood covers every frame."""
        mu, std = self.encode(x, obs_mask, times)
        b = x.shape[0]
        eps = randn((self.n_z0, b, self.latents), generator, x)
        z0 = (mu + std * eps).repeat_interleave(self.n_w, 0)  # (K, B, L)
        w, kl_w = None, x.new_zeros(())
        post = self.w_posterior()
        if post is not None:
            w_mu, w_std = post
            w = w_mu + w_std * randn((self.n_z0 * self.n_w, b, w_mu.numel()), generator, x)
            kl_w = _kl_normal(w_mu, w_std).sum()
        weighted = self.igo or self.igo_weights
        src, dst = _tau_pairs(times, self.tau) if weighted else (None, None)
        pred = self.decode_path(z0, w, times, src)
        loglik = self._loglik(pred.frames, x)  # (K, B)
        parts = {}
        if weighted:
            at_tau = pred.intermediate if self.igo else pred.frames[:, :, dst]
            ll_tau = self._loglik(at_tau, x[:, dst])
            loglik = self.alpha * loglik + (1 - self.alpha) * ll_tau
            parts["loglik_tau"] = ll_tau.max(0).values.mean().item()
        best = loglik.max(0).values  # best-of-K per subject
        kl_z0 = _kl_normal(mu, std).sum(-1)
        loss = -(best - kl_coef * kl_z0).mean() + kl_coef * kl_w / n_subjects
        mse = (pred.frames.mean(0) - x).pow(2).mean().item()
        return loss, parts | {"loglik": best.mean().item(), "kl_z0": kl_z0.mean().item(),
                              "kl_w": kl_w.item(), "mse": mse}

    def latent_loss(self, x: torch.Tensor, obs_mask: torch.Tensor, times: torch.Tensor
                    ) -> torch.Tensor:
        """Mean of |z(t_i) - c_i|^2 / var(c) over frames x (B, T, *frame): the latent path from
        the posterior mean of z0 (and of w) against the frame codes c_i = frame_encoder(x_i),
        which get no gradient. Teaches encoder and dynamics to follow the codes a warmed-up
        decoder can draw, in latent space (no decoding; image frames)."""
        if not self.images:
            raise PcdkitError("job.latent_warmup: the latent warm-up needs image frames; this "
                              f"model's frames are vectors of size {self.frame_shape[0]}")
        b, t = x.shape[:2]
        with torch.no_grad():
            codes = self.frame_encoder(x.reshape(b * t, *self.frame_shape)).reshape(b, t, -1)
        mu, _ = self.encode(x, obs_mask, times)
        post = self.w_posterior()
        w = None if post is None else post[0].expand(1, b, -1)
        path = self.latent_path(mu.unsqueeze(0), w, times)[0, ..., :self.latents]
        return (path - codes).pow(2).mean() / codes.var(0).mean().clamp_min(1e-8)

    def codec_parameters(self) -> list[nn.Parameter]:
        """Parameters of the frame encoder and decoder (the frame codec)."""
        return [*self.frame_encoder.parameters(), *self.decoder.parameters()]

    def codec_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the frame codec as an autoencoder, decoder(frame_encoder(f)),
        over the frames of x (B, T, 1, 28, 28): a warm-up that gives the decoder digits to
        draw before the dynamics have to (image frames only)."""
        if not self.images:
            raise PcdkitError("job.codec_warmup: the frame-codec warm-up needs image frames; "
                              f"this model's frames are vectors of size {self.frame_shape[0]}")
        frames = x.reshape(-1, *self.frame_shape)
        return (self.decoder(self.frame_encoder(frames)) - frames).pow(2).mean()

    def _loglik(self, pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Gaussian log-density averaged over time x dims: (K, B)."""
        err = ((pred - x.unsqueeze(0)) / self.obs_std) ** 2
        return -0.5 * (err.flatten(2).mean(-1) + LOG_2PI) - math.log(self.obs_std)

    # -- prediction ------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: torch.Tensor, obs_mask: torch.Tensor, times: torch.Tensor
                ) -> torch.Tensor:
        """Frames at every time of ``times`` (B, T, *frame) from the posterior means, integrated
        from times[0] through the observed window onwards (never restarted)."""
        mu, _ = self.encode(x, obs_mask, times)
        post = self.w_posterior()
        w = None if post is None else post[0].expand(1, x.shape[0], -1)
        return self.decode_path(mu.unsqueeze(0), w, times).frames[0]


def _kl_normal(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, std^2) || N(0, 1)) elementwise."""
    return 0.5 * (mu**2 + std**2 - 1) - torch.log(std)


def _tau_pairs(times: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices i (pathway time t_i) and j with t_j = times[0] + tau (t_i - times[0])."""
    rel = (times - times[0]) * tau + times[0]
    diff = (rel[:, None] - times[None, :]).abs()
    best = diff.min(1)
    ok = best.values < 1e-6 * max(1.0, float(times[-1] - times[0]))
    src = torch.nonzero(ok).flatten()
    if len(src) < 2:
        raise PcdkitError(f"model.tau={tau}: tau * t falls on the time grid at fewer than two "
                          "frames; choose tau = 1/2 (or 1/k) with an evenly spaced grid")
    return src, best.indices[src]


def node(frame_shape: tuple[int, ...], **settings: object) -> MixedEffectNODE:
    """The NODE baseline: the same encoder, dynamics MLP and decoder without a mixed effect."""
    return MixedEffectNODE(frame_shape, mixed_effect=False, **settings)
