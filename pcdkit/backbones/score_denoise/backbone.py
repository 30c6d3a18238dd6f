"""The ``score-denoise`` backbone plugin object: a network plus the denoising settings."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pcdkit.backbones.score_denoise.denoise import denoise_cloud, patch_context, score_with
from pcdkit.backbones.score_denoise.model import LossSettings, Precision, ScoreDenoiseNet
from pcdkit.checkpoints import load_checkpoint
from pcdkit.core.arithmetic import fastest_products
from pcdkit.errors import PcdkitError
from pcdkit.kernels import runs_on
from pcdkit.weights import resolve

#: the checkpoint trained by pcdkit's own training job, shipped with the package
DEFAULT_CHECKPOINT = Path(__file__).with_name("weights") / "pcdkit-default.pt"


def load_network(checkpoint: Path | None = None, allow_pickle: bool = False,
                 knn_backend: str = "auto", compiled_training: bool = False,
                 loss: LossSettings | None = None, compiled_inference: bool = False,
                 training_precision: str = "float32") -> ScoreDenoiseNet:
    """A score-denoise network with weights from a pcdkit checkpoint (default: the embedded)."""
    path = resolve(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if checkpoint is None and not path.is_file():
        raise PcdkitError(f"no embedded score-denoise checkpoint in this installation ({path}); "
                          "give one: pipelines `backbone.checkpoint`, CLI `--checkpoint` (convert "
                          "the reference with `pcdkit convert score-denoise SRC DST`)")
    ckpt = load_checkpoint(path, allow_pickle=allow_pickle)
    if ckpt.model != "score-denoise":
        raise PcdkitError(f"{path}: holds a {ckpt.model!r} model, expected 'score-denoise'")
    net = ScoreDenoiseNet(knn_backend=knn_backend, compiled_training=compiled_training,
                          loss=loss, compiled_inference=compiled_inference,
                          training_precision=training_precision)
    try:
        net.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        raise PcdkitError(f"{path}: weights do not fit the score-denoise network: {exc}") from None
    return net.eval()


class ScoreDenoiser:
    """Patch-based score-based denoiser (see :mod:`pcdkit.backbones.score_denoise.denoise`).

    Denoising (``evaluate``, the API) uses ``checkpoint``, by default the embedded weights;
    ``train-denoiser`` trains :meth:`network`, fresh unless ``checkpoint`` is given (then it
    fine-tunes those weights). Given files are read at construction; the embedded default on
    first use (training from scratch needs none).
    """

    checkpoint_model = "score-denoise"

    def __init__(self, checkpoint: Path | None, allow_pickle: bool, passes: int, steps: int,
                 step_size: float, decay: float, neighbours: int, patch_size: int,
                 seed_k: float, batch_patches: int, cluster_above: int, cluster_size: int,
                 backend: str, heads: Path | None = None, tau: float | None = None,
                 preset: str = "fast", matmul_precision: str = "auto",
                 zero_init_output: bool = False,
                 compiled_training: bool = False, num_points: int = 128, frame_knn: int = 32,
                 clean_neighbours: int = 4, sigma: float = 0.01,
                 compiled_inference: bool = False, feature_layout: str = "auto",
                 training_precision: str = "float32") -> None:
        self.checkpoint, self.allow_pickle = checkpoint, allow_pickle
        self.loss = LossSettings(num_points, frame_knn, clean_neighbours, sigma)
        self.zero_init_output, self.compiled_training = zero_init_output, compiled_training
        self.training_precision = training_precision
        self.settings = dict(passes=passes, steps=steps, step_size=step_size, decay=decay,
                             neighbours=neighbours, patch_size=patch_size, seed_k=seed_k,
                             batch_patches=batch_patches, cluster_above=cluster_above,
                             cluster_size=cluster_size, backend=backend)
        self.preset, self.matmul_precision = preset, matmul_precision
        self.compiled_inference = compiled_inference
        # auto: the fast preset's split layout is inside issue 14's quality rule (README)
        self.split_features = (feature_layout == "split"
                               or (feature_layout == "auto" and preset == "fast"))
        if (heads is None) != (tau is None):
            raise PcdkitError("backbone: give both `heads` (an IGO heads checkpoint) and `tau` "
                              "to denoise through E_tau / D_tau, or neither")
        self._heads = (Path(heads), float(tau)) if heads is not None else None
        self._net: ScoreDenoiseNet | None = None
        if checkpoint is not None or heads is not None:  # a bad file fails here, not later
            _ = self.net

    @property
    def net(self) -> ScoreDenoiseNet:
        """The denoising network (``checkpoint``, default the embedded), loaded once."""
        if self._net is None:
            self._net = load_network(self.checkpoint, self.allow_pickle,
                                     self.settings["backend"], loss=self.loss,
                                     compiled_inference=self.compiled_inference)
            if self._heads is not None:
                self._attach_heads(*self._heads)
        return self._net

    def network(self) -> ScoreDenoiseNet:
        """A network to train: ``checkpoint``'s weights, or fresh (reference initialisation;
        output layer zeroed with ``zero_init_output``)."""
        backend = self.settings["backend"]
        if self.checkpoint is not None:
            return load_network(self.checkpoint, self.allow_pickle, backend,
                                compiled_training=self.compiled_training, loss=self.loss,
                                training_precision=self.training_precision)
        net = ScoreDenoiseNet(knn_backend=backend, compiled_training=self.compiled_training,
                              loss=self.loss, training_precision=self.training_precision)
        if self.zero_init_output:  # start from the zero score: no early loss explosion
            torch.nn.init.zeros_(net.output_layer.weight)
            torch.nn.init.zeros_(net.output_layer.bias)
        return net

    def config(self) -> dict[str, Any]:
        """The loss and denoising settings, stored in exported checkpoints."""
        return {**dataclasses.asdict(self.loss), **self.settings}

    def denoise_with(self, network: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """Denoise one (N, 3) cloud with ``network`` by this plugin's schedule."""
        skip = ("encoder", "decoder", "backend")
        settings = {k: v for k, v in self.settings.items() if k not in skip}
        return denoise_cloud(network, points, **settings, **self._arithmetic(points.device))

    def _arithmetic(self, device: torch.device) -> dict[str, Any]:
        """The arithmetic of denoising on ``device``: the products' precision, the feature
        graphs' layout (``feature_layout``; ``auto``: split in ``fast``, the reference's in
        ``faithful``) and the neighbour searches' backend."""
        return {"precision": self.precision_for(device), "split_features": self.split_features,
                "backend": self.backend_for(device)}

    def backend_for(self, device: torch.device) -> str:
        """The neighbour searches' backend on ``device``: ``backend`` when given, else for the
        ``fast`` preset on CPUs with AVX-512 kernels ``avx512`` (pcdkit's brute-force search of
        a patch's points, 2.5-3x faster than a k-d tree per patch; README "Benchmarks"),
        ``auto`` otherwise."""
        chosen = self.settings["backend"]
        if chosen == "auto" and self.preset == "fast" and runs_on(device):
            return "avx512"
        return chosen

    def precision_for(self, device: torch.device) -> Precision:
        """The hidden products' arithmetic on ``device``: ``matmul_precision`` when given,
        else for the ``fast`` preset the fastest on this machine (float32, bfloat16, or int8
        where its quantisation is fused: :func:`pcdkit.core.arithmetic.fastest_products`;
        int8 runs as ``int8-fused``, the hand-fused kernel, on CPUs with AVX512-VNNI, and
        compiled elsewhere), float32 otherwise."""
        if self.matmul_precision != "auto":
            return self.matmul_precision  # type: ignore[return-value]
        if self.preset != "fast":
            return "float32"
        kernel = runs_on(device)
        chosen = fastest_products(device, int8_fused=kernel or self.compiled_inference)
        return "int8-fused" if chosen == "int8" and kernel else chosen  # type: ignore[return-value]

    def _attach_heads(self, path: Path, tau: float) -> None:
        from pcdkit.heads.igo_score_denoise import IGOHeads

        ckpt = load_checkpoint(path, allow_pickle=self.allow_pickle)
        if ckpt.model != "igo-score-denoise-heads":
            raise PcdkitError(f"{path}: holds {ckpt.model!r}, expected IGO heads")
        taus = ckpt.config.get("taus", [])
        if tau not in taus:
            raise PcdkitError(f"backbone.tau: {tau} not among the heads' taus {taus}")
        heads = IGOHeads(self.net, taus)
        heads.load_state_dict(ckpt.state_dict)
        enc, dec = heads.pair(tau)
        self.settings |= {"encoder": enc.eval(), "decoder": dec.eval()}

    def score(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, 3): the network's displacement of each point towards the surface
        (:func:`score_field`; a ScorePrior for posterior sampling)."""
        return self.frozen(points)(points)

    def frozen(self, points: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The score field with the patches and features of ``points`` read once, for clouds
        near it point for point (:func:`patch_context`; ScorePrior's optional speed-up).
        With ``heads`` and ``tau`` the field runs through IGO's intermediate pathway E_tau /
        D_tau, the analogue of SGILO's intermediate layer."""
        net, s = self._net_on(points.device), self.settings
        backend = self.backend_for(points.device)
        context = patch_context(net, points, patch_size=s["patch_size"], seed_k=s["seed_k"],
                                batch_patches=s["batch_patches"], backend=backend,
                                encoder=s.get("encoder"))
        return functools.partial(score_with, net, context, neighbours=s["neighbours"],
                                 backend=backend, decoder=s.get("decoder"),
                                 precision=self.precision_for(points.device))

    def _net_on(self, device: torch.device) -> ScoreDenoiseNet:
        """The network (and IGO heads, when attached) on ``device``."""
        net = self.net
        if next(net.parameters()).device != device:
            net.to(device)
            for key in ("encoder", "decoder"):
                if self.settings.get(key) is not None:
                    self.settings[key].to(device)
        return net

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Denoise one (N, 3) cloud on its device."""
        net = self._net_on(points.device)
        settings = {k: v for k, v in self.settings.items() if k != "backend"}
        return denoise_cloud(net, points, **settings, **self._arithmetic(points.device))
