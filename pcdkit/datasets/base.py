"""A lazily loaded, indexable sequence of shapes, shared by the point-cloud dataset plugins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import torch

from pcdkit.core.params import did_you_mean
from pcdkit.errors import PcdkitError
from pcdkit.geometry.sampling import sample_mesh_poisson, sample_mesh_uniform
from pcdkit.structures import Mesh, Shape


class ShapeDataset(Sequence[Shape]):
    """Shapes by name; each is built on access by ``load(name)``."""

    def __init__(self, names: Sequence[str], load: Callable[[str], Shape]) -> None:
        self.names = list(names)
        self._load = load

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> Shape: ...
    @overload
    def __getitem__(self, i: slice) -> list[Shape]: ...

    def __getitem__(self, i: int | slice) -> Shape | list[Shape]:
        if isinstance(i, slice):
            return [self._load(n) for n in self.names[i]]
        return self._load(self.names[i])


def select(available: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    """``wanted`` (validated against ``available``) or everything, keeping the given order."""
    if not wanted:
        return sorted(available)
    missing = [w for w in wanted if w not in available]
    if missing:
        hint = did_you_mean(missing[0], available)
        raise PcdkitError(f"{where}: unknown shape(s) {', '.join(missing)}{hint}; available: "
                          f"{', '.join(sorted(available))}")
    return list(wanted)


def sample_surface(mesh: Mesh, n: int, sampler: str, seed: int) -> torch.Tensor:
    """``n`` points on a mesh by the named sampler, reproducibly."""
    gen = torch.Generator().manual_seed(seed)
    if sampler == "poisson":
        return sample_mesh_poisson(mesh, n, gen)
    if sampler == "uniform":
        return sample_mesh_uniform(mesh, n, gen)
    raise PcdkitError(f"sampler: expected 'poisson' or 'uniform', got {sampler!r}")
