"""Panel data for latent dynamics: many subjects, one time grid, cached by generator settings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from pcdkit.core.atomic import atomic_torch_save
from pcdkit.datasets.folders import default_cache_dir
from pcdkit.errors import PcdkitError


@dataclass
class Normalizer:
    """Per-feature affine map ``(x - shift) / scale``, stored with the data and invertible.

    ``kind`` says how it was fitted, so a refit (on training subjects) keeps it: ``standard``
    (mean, std) or ``reference`` (the ME-NODE / Latent ODE code's ``(x - min) / max``, max of 0
    replaced by 1; not a min-max scaling, kept for numbers in the reference's units).
    """

    shift: torch.Tensor
    scale: torch.Tensor
    kind: str = "standard"

    @classmethod
    def fit(cls, flat: torch.Tensor, kind: str = "standard") -> Normalizer:
        """Fitted per feature on ``flat`` (rows x features)."""
        if kind == "reference":
            top = flat.amax(0)
            return cls(flat.amin(0), torch.where(top == 0, torch.ones_like(top), top), kind)
        if kind != "standard":
            raise ValueError(f"normaliser kind {kind!r}: expected standard or reference")
        return cls(flat.mean(0), flat.std(0).clamp_min(1e-6), kind)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``x``."""
        return (x - self.shift) / self.scale

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Back to physical units."""
        return y * self.scale + self.shift


@dataclass
class Trajectories:
    """``values`` (N, T, *frame) on the shared grid ``times`` (T,) in [0, 1]."""

    values: torch.Tensor
    times: torch.Tensor
    settings: dict[str, Any]
    normalizer: Normalizer | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one observation: (D,) for vectors, (C, H, W) for images."""
        return tuple(self.values.shape[2:])

    def split(self, test_fraction: float) -> tuple[Trajectories, Trajectories]:
        """(train, test): the last ``test_fraction`` of subjects is the test set, with no
        leakage from it into training.

        - Subjects made from the same source item (``info["index"]``, e.g. the MNIST image a
          rotating sequence shows) as a test subject are dropped from training.
        - A normaliser is refitted on the training subjects alone and applied to both parts.
        """
        n_test = max(1, round(len(self) * test_fraction))
        if n_test >= len(self):
            raise PcdkitError(f"job.test_fraction: {test_fraction} of {len(self)} subjects "
                              "leaves none for training")
        cut = len(self) - n_test
        keep = torch.arange(cut)
        source = self.info.get("index")
        if isinstance(source, torch.Tensor) and len(source) == len(self):
            keep = keep[~torch.isin(source[:cut], source[cut:])]
        if len(keep) == 0:
            raise PcdkitError("job.test_fraction: every training subject shares its source "
                              "with a test subject; generate more subjects")
        values, norm = self.values, self.normalizer
        if norm is not None:  # refit on training subjects only, the same kind
            raw = norm.inverse(values)
            norm = Normalizer.fit(raw[keep].reshape(-1, raw.shape[-1]), norm.kind)
            values = norm(raw)
        test = torch.arange(cut, len(self))

        def part(idx: torch.Tensor) -> Trajectories:
            info = {k: v[idx] if isinstance(v, torch.Tensor) and len(v) == len(self) else v
                    for k, v in self.info.items()}
            return Trajectories(values[idx], self.times, self.settings, norm, info)

        return part(keep), part(test)


def cached(name: str, settings: dict[str, Any], make: Callable[[], Trajectories],
           cache: bool = True) -> Trajectories:
    """Load ``<cache>/<name>-<hash of settings>.pt`` or generate and store it atomically."""
    if not cache:
        return make()
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = default_cache_dir() / f"{name}-{key}.pt"
    if path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("settings") == settings:
            norm = blob.get("normalizer")
            return Trajectories(blob["values"], blob["times"], settings,
                                Normalizer(**norm) if norm else None, blob.get("info", {}))
    data = make()
    norm = data.normalizer
    atomic_torch_save({"values": data.values, "times": data.times, "settings": settings,
                       "normalizer": ({"shift": norm.shift, "scale": norm.scale, "kind": norm.kind}
                                      if norm else None),
                       "info": data.info}, path)
    return data
