"""Datasets read from disk: the PU-Net layout and any folder of meshes (with a sampling cache)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pcdkit.core.atomic import atomic_write
from pcdkit.datasets.base import ShapeDataset, sample_surface, select
from pcdkit.errors import PcdkitError
from pcdkit.io import read_mesh, read_points
from pcdkit.io.files import MESH_SUFFIXES
from pcdkit.structures import Shape


def punet(
    root: Path, split: str = "test", resolution: int = 10000, shapes: Sequence[str] | None = None,
    meshes: bool = True,
) -> ShapeDataset:
    """PU-Net layout: ``root/pointclouds/<split>/<resolution>_poisson/*.xyz`` and
    ``root/meshes/<split>/*.off``."""
    cloud_dir = Path(root) / "pointclouds" / split / f"{resolution}_poisson"
    mesh_dir = Path(root) / "meshes" / split
    if not cloud_dir.is_dir():
        raise PcdkitError(f"dataset.root: {cloud_dir} not found (expected the PU-Net layout "
                          "<root>/pointclouds/<split>/<resolution>_poisson/*.xyz)")
    available = sorted(p.stem for p in cloud_dir.glob("*.xyz"))
    if not available:
        raise PcdkitError(f"dataset.root: no .xyz files in {cloud_dir}")
    names = select(available, shapes, "dataset.shapes")
    if meshes:
        missing = [n for n in names if not (mesh_dir / f"{n}.off").is_file()]
        if missing:
            raise PcdkitError(f"dataset.root: no mesh for {', '.join(missing)} in {mesh_dir} "
                              "(set meshes: false to evaluate without P2M)")

    def load(name: str) -> Shape:
        mesh = read_mesh(mesh_dir / f"{name}.off") if meshes else None
        return Shape(name, read_points(cloud_dir / f"{name}.xyz"), mesh)

    return ShapeDataset(names, load)


def default_cache_dir() -> Path:
    """``$PCDKIT_CACHE`` or ``$XDG_CACHE_HOME/pcdkit`` (``~/.cache/pcdkit``)."""
    if os.environ.get("PCDKIT_CACHE"):
        return Path(os.environ["PCDKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pcdkit"


def mesh_folder(
    root: Path, resolution: int = 10000, sampler: str = "poisson", seed: int = 0,
    shapes: Sequence[str] | None = None, cache_dir: Path | None = None, cache: bool = True,
) -> ShapeDataset:
    """Every mesh in ``root`` (.off/.ply/.npz), with a cloud sampled at ``resolution``.

    Clouds are cached under ``cache_dir`` keyed by a SHA-256 of the mesh file's bytes and the
    sampling settings, so editing a mesh never returns a stale cloud.
    """
    root = Path(root)
    if not root.is_dir():
        raise PcdkitError(f"dataset.root: {root} is not a directory")
    files = {p.stem: p for p in sorted(root.iterdir()) if p.suffix.lower() in MESH_SUFFIXES}
    if not files:
        raise PcdkitError(f"dataset.root: no meshes ({', '.join(MESH_SUFFIXES)}) in {root}")
    names = select(list(files), shapes, "dataset.shapes")
    cdir = Path(cache_dir) if cache_dir else default_cache_dir() / "mesh-folder"

    def load(name: str) -> Shape:
        path = files[name]
        mesh = read_mesh(path)
        if not cache:
            return Shape(name, sample_surface(mesh, resolution, sampler, seed), mesh)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
        file = cdir / f"{name}-{digest}-{sampler}-{resolution}-{seed}.npy"
        if file.is_file():
            return Shape(name, torch.from_numpy(np.load(file)), mesh)
        points = sample_surface(mesh, resolution, sampler, seed)
        atomic_write(file, lambda fh: np.save(fh, points.numpy()))
        return Shape(name, points, mesh)

    return ShapeDataset(names, load)
