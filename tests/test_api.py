"""The public Python API: the README's example, input layouts, and the protocol metrics."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pcdkit
from pcdkit.datasets.procedural import make_mesh
from pcdkit.errors import PcdkitError


def test_readme_example_runs(tmp_path: Path, checkpoint: Path) -> None:
    mesh_file = tmp_path / "torus.off"
    from pcdkit.io import write_mesh

    write_mesh(mesh_file, make_mesh("torus"))
    # --- the README's example, with a small cloud and a random-weight checkpoint ---
    clean = pcdkit.sample(str(mesh_file), 300, seed=1)                # Poisson-disk, exactly N
    noisy = clean + 0.02 * torch.randn(clean.shape)
    out = pcdkit.denoise(noisy, checkpoint=checkpoint, steps=2)     # same type and shape
    pcdkit.write(tmp_path / "denoised.ply", out)
    print(pcdkit.chamfer(noisy, clean), pcdkit.p2m(out, pcdkit.read_mesh(mesh_file)))
    # ---
    assert clean.shape == (300, 3) and out.shape == (300, 3)
    assert torch.equal(pcdkit.read(tmp_path / "denoised.ply"), out)
    assert pcdkit.chamfer(clean, clean) == 0.0 and pcdkit.chamfer(noisy, clean) > 0


def test_denoise_keeps_numpy_batches_and_lists(checkpoint: Path) -> None:
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(2, 60, 3)).astype(np.float32)
    out = pcdkit.denoise(batch, checkpoint=checkpoint, steps=1)
    assert isinstance(out, np.ndarray) and out.shape == (2, 60, 3)
    ragged = [torch.from_numpy(batch[0]), torch.from_numpy(batch[1, :40])]
    outs = pcdkit.denoise(ragged, checkpoint=checkpoint, steps=1)
    assert [tuple(o.shape) for o in outs] == [(60, 3), (40, 3)]
    assert torch.allclose(outs[0], torch.from_numpy(out[0]))
    with pytest.raises(PcdkitError, match=r"\(N, 3\)"):
        pcdkit.denoise(np.zeros((60, 2)), checkpoint=checkpoint)


def test_import_pcdkit_does_not_import_torch() -> None:
    code = "import sys, pcdkit; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
    assert set(pcdkit.__all__) <= set(dir(pcdkit.api))


def test_sample_command_writes_exactly_n_points_and_refuses_bad_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pcdkit.cli import main
    from pcdkit.io import write_mesh

    mesh = tmp_path / "cube.off"
    write_mesh(mesh, make_mesh("cube"))
    out = tmp_path / "cube.xyz"
    assert main(["sample", str(mesh), "-o", str(out), "-n", "500", "--noise", "0.01"]) == 0
    cloud = pcdkit.read(out)
    assert cloud.shape == (500, 3) and cloud.abs().max() > 1.0  # noise leaves the unit cube
    assert main(["sample", str(mesh), "-o", str(out), "-n", "500"]) == 2  # exists
    assert main(["sample", str(mesh), "-o", str(tmp_path / "b.xyz"), "-n", "0"]) == 2
    assert main(["sample", str(mesh), "-o", str(tmp_path / "c.xyz"), "--noise", "nan"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_folder_is_denoised_once_per_file_by_two_torchrun_ranks_and_resumes(
        tmp_path: Path, checkpoint: Path) -> None:
    import os

    src, dst = tmp_path / "scans", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        pcdkit.write(src / f"scan{i}.{'xyz' if i % 2 else 'npy'}",
                     rng.normal(size=(40 + i, 3)).astype(np.float32))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "pcdkit", "denoise", str(src), "-o", str(dst),
           "--checkpoint", str(checkpoint)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = re.findall(r"rank (\d): denoised \d+ points", proc.stdout)
    assert len(done) == 6 and set(done) == {"0", "1"}, proc.stdout
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in src.iterdir())
    assert pcdkit.read(dst / "scan3.xyz").shape == (43, 3)
    (dst / "scan4.npy").unlink()  # an interrupted batch: only the missing file is redone
    again = subprocess.run(cmd[:4] + ["1"] + cmd[5:], capture_output=True, text=True, env=env,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("skipped") == 5 and (dst / "scan4.npy").is_file()
