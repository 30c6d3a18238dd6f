"""Shared fixtures: paths to the shared test data, small meshes, run helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PCDKIT_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
STANDIN = DATA / "punet" / "meshes_unverified" / "test"
GOLDEN = DATA / "golden"


def need(path: Path) -> Path:
    """Skip the test when the shared data is absent (end-user installs have none)."""
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


@pytest.fixture
def standin() -> Path:
    """Folder of the 16 stand-in PU-Net test meshes."""
    return need(STANDIN)


@pytest.fixture
def golden() -> Path:
    """Folder of reference values computed with pytorch3d / the reference implementation."""
    return need(GOLDEN)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private pcdkit cache folder."""
    d = tmp_path / "cache"
    monkeypatch.setenv("PCDKIT_CACHE", str(d))
    return d


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device of this machine: CPU always, CUDA when present (device-sensitive tests)."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A score-denoise checkpoint with random weights (seed 0): fast tests of the denoising
    plumbing, not of its quality."""
    from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
    from pcdkit.checkpoints import Checkpoint, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    save_checkpoint(Checkpoint("score-denoise", ScoreDenoiseNet().state_dict()), path)
    return path
