"""What a plugin object of each kind must offer: every contract in one place.

A plugin's factory (``PluginSpec.factory``) is called with its validated settings as keyword
arguments, plus, for two kinds, one object from the job:

- ``head`` factories also get ``backbone=`` (the network the heads attach to: the
  ``nn.Module`` of the backbone, e.g. :meth:`TrainableDenoiser.network`);
- ``dynamics`` factories also get ``frame_shape=`` (the shape of one observation).

A job's slot names the contract its plugin must satisfy (:class:`pcdkit.plugin.Slot`
``contract``); :meth:`pcdkit.core.context.JobContext.build` checks the built object against it, so a
plugin of the right kind but the wrong shape fails with its name and distribution before any
work starts. The protocols are ``runtime_checkable``: only the presence of the members is
checked at run time, the signatures below are the documentation.

Conventions for every kind: tensors stay on the device they came on (a CPU-only library may be
used inside, with a round trip through the host); randomness comes from the ``generator``
argument, never from global state; nothing is kept on the object between calls (per-call
context goes into a copy, see ``EulerMaruyama.bind``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from pcdkit.core.context import JobContext
    from pcdkit.corruptions.base import Corrupted
    from pcdkit.structures import Mesh, Shape


@runtime_checkable
class PointDenoiser(Protocol):
    """``backbone`` for point-cloud jobs (``evaluate``): one noisy cloud in, one cloud out."""

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """(N, 3) noisy points on any device -> (M, 3) denoised points on the same device."""
        ...


@runtime_checkable
class ImageScoreModel(Protocol):
    """``backbone`` for ``image-score``: an ``nn.Module`` scoring noisy images at times t."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) at times t (B,) -> score estimate (B, C, H, W)."""
        ...

    def parameters(self) -> Any:
        """The trainable parameters (an ``nn.Module``)."""
        ...

    def config(self) -> dict[str, Any]:
        """The settings that rebuild the network (stored in its checkpoints)."""
        ...


@runtime_checkable
class HeadSet(Protocol):
    """``head``: IGO's intermediate pathways E_tau / D_tau, one pair per fraction tau."""

    taus: Sequence[float]

    def pair(self, tau: float) -> tuple[Any, Any]:
        """(E_tau, D_tau): the modules replacing the backbone's first / last layer."""
        ...

    def overhead(self, backbone: Any) -> dict[str, int]:
        """Parameter counts: the heads, the backbone, and IGO against separate networks."""
        ...


@runtime_checkable
class TrainableDenoiser(Protocol):
    """``backbone`` for ``train-denoiser``: the network to train and how to denoise with it.

    The job cuts (noisy, clean) patches from the training shapes and calls the network on them;
    the network owns its loss. It validates copies of the network (its weight average,
    BatchNorm statistics re-estimated) through :meth:`denoise_with`, and exports the weights as
    a :class:`pcdkit.checkpoints.Checkpoint` named :attr:`checkpoint_model` with
    :meth:`config`, which the plugin's ``checkpoint`` setting reads back for denoising.
    Optional: ``network().output_layer`` (a module) for ``job.output_lr``.
    """

    checkpoint_model: str

    def network(self) -> torch.nn.Module:
        """The module to train (fresh, or the plugin's starting weights): called as
        ``network(noisy (B, P, 3), clean (B, Q, 3), generator)`` it returns the scalar loss."""
        ...

    def denoise_with(self, network: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (M, 3) on the same device: ``points`` denoised by ``network`` (a trained
        copy of :meth:`network`, in eval mode)."""
        ...

    def config(self) -> dict[str, Any]:
        """Settings stored in exported checkpoints (what rebuilds the network)."""
        ...


@runtime_checkable
class TrainableHeads(HeadSet, Protocol):
    """``head`` for ``train-denoiser``: IGO heads that also assemble the training module."""

    def combine(self, backbone: torch.nn.Module, alpha: float) -> torch.nn.Module:
        """A module holding ``backbone`` and the heads (attributes ``.backbone``, ``.heads``:
        the job exports both from its weight average) whose call ``(noisy, clean, generator,
        intermediates={tau: x_tau})`` is alpha * L(x_t) + (1 - alpha) * sum_tau L(x_tau)."""
        ...

    def diversity(self, backbone: torch.nn.Module) -> dict[str, float]:
        """Scalars logged every row (e.g. how far E_tau / D_tau moved from E_T / D_T)."""
        ...


@runtime_checkable
class Metric(Protocol):
    """``metric``: ``frame`` says what ``target`` is; the protocol normalises both (unit
    sphere of the ground-truth cloud, or of the mesh vertices) before the call."""

    frame: Literal["points", "mesh", "tensor"]

    def __call__(self, pred: torch.Tensor, target: torch.Tensor | Mesh) -> torch.Tensor:
        """A scalar: the distance of ``pred`` (N, 3) to ``target``."""
        ...


@runtime_checkable
class CorruptionProcess(Protocol):
    """``corruption``: clean batch in, corrupted batch (and intermediate iterates) out.

    Point-cloud jobs pass (B, N, 3); image jobs (B, C, H, W). ``taus`` asks for the iterates at
    those fractions of each sample's time (IGO's x_tau); a process that cannot produce them
    raises ``ValueError``.
    """

    def __call__(self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
                 taus: Sequence[float] = ()) -> Corrupted:
        """The final iterate ``x_t``, per-sample times ``t`` and ``intermediates[tau]``."""
        ...


@runtime_checkable
class SDEProcess(CorruptionProcess, Protocol):
    """``corruption`` for score-based generation (``image-score``): a forward SDE whose
    Gaussian kernel and prior the loss and the samplers need (``EulerMaruyama`` provides all)."""

    t_max: float

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """a(x, t), broadcastable to x; t per sample, shaped (B, 1, ..., 1)."""
        ...

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """b(x, t), broadcastable to x."""
        ...

    def kernel_score(self, e: torch.Tensor, t: torch.Tensor, frac: float,
                     variance: torch.Tensor) -> torch.Tensor:
        """Score of the injected noise's Gaussian at ``frac`` of t (the training target)."""
        ...

    def kernel_std(self, t: torch.Tensor) -> torch.Tensor:
        """Standard deviation of the injected noise at times t (B,)."""
        ...

    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
        """A draw of the noise at t_max: where the samplers start."""
        ...


@runtime_checkable
class ScorePrior(Protocol):
    """``prior`` for ``posterior-sample``: a learned score of clean surfaces at a noise level.

    Optional: ``frozen(points) -> field``, a score field whose context (e.g. patches and their
    features) is read once from ``points`` and reused for clouds near it point for point; the
    sampler then refreshes it once per noise level instead of at every step.
    """

    def score(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, 3): the estimated displacement of each point towards the clean surface,
        i.e. sigma^2 * grad log p_sigma(x) (Tweedie), in the cloud's own units."""
        ...


@runtime_checkable
class ForwardOperator(Protocol):
    """``operator``: how a measurement y of a clean cloud x is made, and log p(y | x).

    Clouds are (N, 3); ``measure`` draws with ``generator``. The sampler works in the unit-sphere
    frame of the measurement, so noise levels are in that frame.
    """

    def measure(self, clean: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """The measurement y (M, 3) of a clean cloud (N, 3)."""
        ...

    def grad_log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, 3): the gradient of log p(y | x) with respect to the cloud x."""
        ...

    def initial(self, y: torch.Tensor, points: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """A starting cloud of ``points`` points consistent with y (the sampler's x_0)."""
        ...


@runtime_checkable
class ShapeSequence(Protocol):
    """``dataset`` for point-cloud jobs: a sequence of :class:`pcdkit.structures.Shape`
    (name, clean (N, 3) cloud, optional mesh for P2M), loaded lazily."""

    def __len__(self) -> int:
        """Number of shapes."""
        ...

    def __getitem__(self, i: int) -> Shape:
        """Shape ``i``."""
        ...


@runtime_checkable
class ImageData(Protocol):
    """``dataset`` for ``image-score``: ``images`` (N, 1, 28, 28) in [0, 1]."""

    images: torch.Tensor


@runtime_checkable
class PanelData(Protocol):
    """``dataset`` for ``train-dynamics``: subjects x times x frame, one shared time grid."""

    values: torch.Tensor
    times: torch.Tensor

    def split(self, test_fraction: float) -> tuple[Any, Any]:
        """(train, test) without leakage between them."""
        ...


@runtime_checkable
class DynamicsModel(Protocol):
    """``dynamics``: a latent model of panel data, trained by its own loss.

    Optional: ``codec_loss(x) -> scalar tensor``, a reconstruction loss of the model's frame
    encoder / decoder alone on frames x (B, T, *frame), which train-dynamics' ``codec_warmup``
    trains before the ELBO; ``latent_loss(x, obs_mask, times) -> scalar tensor``, a distance of
    the latent path to the frames' codes (``latent_warmup``); ``codec_parameters() -> iterable
    of parameters``, the codec's parameters, which ``latent_warmup`` and ``codec_hold`` keep
    fixed.
    """

    frame_shape: tuple[int, ...]

    def loss(self, x: torch.Tensor, obs_mask: torch.Tensor, times: torch.Tensor,
             kl_coef: float, n_subjects: int, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO of frames x (B, T, *frame) seen where ``obs_mask`` (B, T) is 1."""
        ...

    def predict(self, x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor
                ) -> torch.Tensor:
        """Predicted frames (B, T, *frame) from the frames where ``mask`` is 1."""
        ...


@runtime_checkable
class Job(Protocol):
    """``job``: what ``pcdkit run`` executes; gets its plugins through ``ctx.build(slot)``.

    Optional: a static ``check(pipeline) -> list[(key, message)]`` on the job's class, which
    ``pcdkit validate`` (and ``run``, before any run directory exists) calls with the validated
    pipeline for rules that span sections (e.g. heads that need intermediate iterates from the
    corruption); each returned problem is reported like a bad setting, exit code 2.
    """

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Do the work; the returned metrics are written to ``metrics.json``."""
        ...


def satisfies(obj: Any, contract: type) -> list[str]:
    """Members of ``contract`` that ``obj`` lacks (empty when it satisfies it)."""
    members = [m for m in vars(contract) if not m.startswith("_") and m != "register"]
    members += list(getattr(contract, "__annotations__", {}))
    if "__call__" in vars(contract) and not callable(obj):
        return ["__call__"]
    return sorted({m for m in members if not hasattr(obj, m)})
