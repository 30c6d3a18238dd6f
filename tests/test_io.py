"""Point-cloud and mesh files: round trips, clear errors, no silent overwrites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pcdkit.errors import DataError, PcdkitError
from pcdkit.io import read_mesh, read_points, write_mesh, write_points
from pcdkit.io.ply import write_ply
from pcdkit.structures import Mesh

POINTS = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.5, -0.25], [0.125, 2.0, 3.5]])
MESH = Mesh(torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]),
            torch.tensor([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))


@pytest.mark.parametrize("suffix", [".xyz", ".txt", ".ply", ".npy", ".npz"])
def test_points_round_trip(tmp_path: Path, suffix: str) -> None:
    f = write_points(tmp_path / f"c{suffix}", POINTS)
    assert torch.allclose(read_points(f), POINTS)


@pytest.mark.parametrize("suffix", [".off", ".ply", ".npz"])
def test_mesh_round_trip(tmp_path: Path, suffix: str) -> None:
    m = read_mesh(write_mesh(tmp_path / f"m{suffix}", MESH))
    assert torch.allclose(m.vertices, MESH.vertices) and torch.equal(m.faces, MESH.faces)


def test_ascii_ply_with_quads_and_extra_properties(tmp_path: Path) -> None:
    f = tmp_path / "quad.ply"
    f.write_text("ply\nformat ascii 1.0\ncomment hi\nelement vertex 4\nproperty float x\n"
                 "property float y\nproperty float z\nproperty uchar red\nelement face 1\n"
                 "property list uchar int vertex_indices\nend_header\n"
                 "0 0 0 255\n1 0 0 255\n1 1 0 255\n0 1 0 255\n4 0 1 2 3\n")
    m = read_mesh(f)
    assert m.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    with pytest.warns(UserWarning, match="2 faces are ignored"):
        assert read_points(f, with_extra=True).shape == (4, 4)


def test_binary_big_endian_ply(tmp_path: Path) -> None:
    f = tmp_path / "be.ply"
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=">f4")
    faces = np.zeros(1, dtype=[("n", "u1"), ("v", ">i4", (3,))])
    faces["n"], faces["v"] = 3, [0, 1, 2]
    head = ("ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty float x\n"
            "property float y\nproperty float z\nelement face 1\n"
            "property list uchar int vertex_indices\nend_header\n")
    f.write_bytes(head.encode() + v.tobytes() + faces.tobytes())
    m = read_mesh(f)
    assert m.vertices[1].tolist() == [1, 0, 0] and m.faces.tolist() == [[0, 1, 2]]


def test_off_with_polygons_and_comments(tmp_path: Path) -> None:
    f = tmp_path / "p.off"
    f.write_text("OFF\n# a comment\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n"
                 "4 0 1 2 3\n3 0 1 4\n")
    assert read_mesh(f).faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 4]]


def test_reads_the_standin_meshes(standin: Path) -> None:
    m = read_mesh(standin / "casting.off")
    assert m.vertices.shape == (1826, 3) and m.faces.shape == (3684, 3)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.xyz", "", "file is empty"),
        ("comments.xyz", "# nothing\n", "no points"),
        ("nan.xyz", "0 0 0\n1 nan 0\n", "NaN or infinite"),
        ("ragged.xyz", "0 0 0\n1 2\n", "2 columns, expected 3"),
        ("text.xyz", "0 0 0\n1 two 3\n", "'two' is not a number"),
        ("twocol.xyz", "0 0\n1 1\n", "at least 3 columns"),
        ("trunc.off", "OFF\n4 1 0\n0 0 0\n1 0 0\n", "truncated"),
        ("bad.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "face indices"),
        ("nohead.off", "3 1 0\n", "missing 'OFF' header"),
        ("noply.ply", "hello\n", "not a PLY file"),
        ("weird.abc", "1 2 3\n", "unknown point-cloud format"),
    ],
)
def test_bad_files_fail_with_a_message_naming_file_and_problem(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    f = tmp_path / name
    f.write_text(content)
    reader = read_mesh if name.endswith(".off") else read_points
    with pytest.raises(DataError, match=message) as err:
        reader(f)
    assert str(f) in str(err.value)


def test_truncated_binary_ply_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "t.ply"
    with open(f, "wb") as fh:
        write_ply(fh, POINTS.numpy(), MESH.faces.numpy()[:1])
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 20])
    with pytest.raises(DataError, match="truncated"):
        read_points(f)


def test_missing_file_and_pickled_npy_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_points(tmp_path / "nope.xyz")
    f = tmp_path / "obj.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        read_points(f)


def test_writers_never_overwrite_unless_asked(tmp_path: Path) -> None:
    f = tmp_path / "c.xyz"
    write_points(f, POINTS)
    with pytest.raises(PcdkitError, match="file exists"):
        write_points(f, POINTS * 2)
    assert torch.allclose(read_points(f), POINTS)
    write_points(f, POINTS * 2, overwrite=True)
    assert torch.allclose(read_points(f), POINTS * 2)


@pytest.mark.parametrize("data", ["ascii", "binary", "binary_compressed"])
def test_pcd_files_round_trip_in_every_data_mode(tmp_path: Path, data: str) -> None:
    from pcdkit.io.pcd import write_pcd

    f = tmp_path / f"{data}.pcd"
    with open(f, "wb") as fh:
        write_pcd(fh, POINTS.numpy(), data)
    assert torch.allclose(read_points(f), POINTS, atol=1e-6)


def test_pcd_with_extra_fields_nan_points_and_lzf_back_references(tmp_path: Path) -> None:
    from pcdkit.io.pcd import lzf_decompress

    # literal "abc", then a back-reference of 9 bytes at distance 3 (an overlapping copy)
    assert lzf_decompress(tmp_path, bytes([2]) + b"abc" + bytes([0xE0, 0, 2]), 12) == b"abc" * 4
    head = ("VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
            "WIDTH 3\nHEIGHT 1\nPOINTS 3\nDATA ascii\n")
    f = tmp_path / "rgb.pcd"
    f.write_text(head + "0 0 0 255\n1 2 3 7\nnan nan nan 0\n")
    with pytest.warns(UserWarning, match="1 of 3 points have NaN"):
        assert read_points(f, with_extra=True).tolist() == [[0, 0, 0, 255], [1, 2, 3, 7]]
    assert write_points(tmp_path / "out.pcd", POINTS).read_bytes().startswith(b"# .PCD v0.7")


@pytest.mark.parametrize(("header", "message"), [
    ("FIELDS x y\nSIZE 4 4\nTYPE F F\nCOUNT 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n",
     "lack x/y/z"),
    ("FIELDS x y z\nSIZE 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n",
     "as many entries"),
    ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nPOINTS -4\nDATA binary\n",
     "negative"),
    ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 9\nHEIGHT 1\nPOINTS 9\nDATA binary\n",
     "truncated"),
    ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA "
     "binary_compressed\n", "size words"),
    ("FIELDS x y z\nSIZE 3 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n",
     "unsupported TYPE"),
])
def test_bad_pcd_files_name_the_problem(tmp_path: Path, header: str, message: str) -> None:
    f = tmp_path / "bad.pcd"
    f.write_bytes(b"VERSION 0.7\n" + header.encode() + b"\x00\x00\x00")
    with pytest.raises(DataError, match=message) as err:
        read_points(f)
    assert str(f) in str(err.value)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_round_trip_within_the_quantisation_step(tmp_path: Path,
                                                             suffix: str) -> None:
    pytest.importorskip("laspy", reason="pcdkit[las] not installed")
    f = write_points(tmp_path / f"scan{suffix}", POINTS * 100 + 5000)
    back = read_points(f)
    step = float((POINTS * 100).max() - (POINTS * 100).min()) / 2**30
    assert back.shape == POINTS.shape and torch.allclose(back, POINTS * 100 + 5000,
                                                         atol=max(step, 1e-3))
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot read LAS/LAZ"):
        read_points(f)
