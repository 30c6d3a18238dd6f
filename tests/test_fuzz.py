"""Seeded fuzzing of the CLI: malformed clouds, pipelines and flags end in exit 0 or 2, with no
traceback, and never change the files they were given."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from pcdkit.cli import main

SEED = 20261124
PIPELINE = {"name": "fuzz", "device": "cpu", "seed": 1,
            "job": {"plugin": "evaluate", "limit": 1},
            "dataset": {"plugin": "procedural", "resolution": 200, "shapes": ["cube"],
                        "sampler": "uniform"},
            "corruption": {"plugin": "gaussian", "std": 0.01}, "metrics": ["chamfer"]}
VALUES = [None, 0, -1, 2**70, 1e308, float("nan"), "", "x" * 300, [], {}, [1, [2, [3]]],
          {"plugin": "nope"}, True, "../..", "/dev/null", 1e-320, "inf", "cpu", "cuda:9"]
FLAGS = ["run", "validate", "denoise", "render", "convert", "plugins", "list", "show",
         "schema", "--set", "--out", "--root", "--resume", "--passes", "-o", "--checkpoint",
         "--device", "--json", "--kind", "metric", "chamfer", "score-denoise", "0", "-1",
         "1e9", "nan", "a=b", "job.limit=", "=", "..", "/dev/null", "--titles", "--quiet"]


def _cloud_bytes(rng: np.random.Generator, fmt: str) -> bytes:
    pts = rng.normal(size=(int(rng.integers(1, 40)), 3)).astype(np.float32)
    if fmt == "xyz":
        return "\n".join(" ".join(f"{v:.5f}" for v in p) for p in pts).encode()
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, pts)
        return buf.getvalue()
    if fmt == "pcd":
        import pcdkit.io.pcd as pcd

        buf = io.BytesIO()
        pcd.write_pcd(buf, pts, str(rng.choice(["ascii", "binary", "binary_compressed"])))
        return buf.getvalue()
    if fmt == "off":
        rows = "\n".join(" ".join(f"{v:.5f}" for v in p) for p in pts)
        return f"OFF\n{len(pts)} 1 0\n{rows}\n3 0 0 0\n".encode()
    head = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\n"
            "property float x\nproperty float y\nproperty float z\nend_header\n")
    return head.encode() + pts.tobytes()


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(5))
        at = int(rng.integers(len(data) + 1))
        if op == 0 and data:  # flip bytes
            for i in rng.integers(len(data), size=int(rng.integers(1, 8))):
                data[int(i)] = int(rng.integers(256))
        elif op == 1:  # truncate
            data = data[:at]
        elif op == 2:  # insert a hostile token
            token = rng.choice(["-5", "999999999999", "nan", "1e39", "\x00", "end_header",
                                "element vertex -1", "#", "\n\n", "inf", "OFF"])
            data[at:at] = str(token).encode()
        elif op == 3 and data:  # duplicate a slice
            j = int(rng.integers(at, len(data) + 1))
            data[at:at] = data[at:j]
        else:  # swap digits for letters
            data = bytearray(bytes(data).replace(b"1", b"l", int(rng.integers(1, 4))))
    return bytes(data)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.iterdir() if p.is_file()}


def _call(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit 2 by themselves
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


def _check(case: str, code: int, err: str) -> None:
    assert code in (0, 2), f"{case}: exit {code}\n{err}"
    assert "Traceback" not in err, f"{case}:\n{err}"


def test_fuzzed_clouds_end_in_exit_0_or_2_and_stay_unchanged(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(SEED)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(160):
        fmt = str(rng.choice(["xyz", "npy", "off", "ply", "pcd"]))
        src = inputs / f"c{i}.{fmt}"
        src.write_bytes(_mutate(rng, _cloud_bytes(rng, fmt)))
        before = _digest(inputs)
        code, err = _call(["denoise", str(src), "-o", str(tmp_path / f"o{i}.xyz"),
                           "--checkpoint", str(checkpoint)], capsys)
        _check(f"cloud case {i} ({src.name})", code, err)
        assert _digest(inputs) == before


def test_fuzzed_pipelines_end_in_exit_0_or_2_and_stay_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(SEED + 1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    text = yaml.safe_dump(PIPELINE)
    for i in range(160):
        pipe = inputs / f"p{i}.yaml"
        if i % 2:
            pipe.write_bytes(_mutate(rng, text.encode()))
            overrides: list[str] = []
        else:
            pipe.write_text(text)
            key = str(rng.choice(["seed", "device", "name", "job.limit", "dataset.resolution",
                                  "corruption.std", "metrics", "dataset", "job", "x.y.z",
                                  "metrics.0", "dataset.shapes.5"]))
            value = VALUES[int(rng.integers(len(VALUES)))]
            overrides = ["--set", f"{key}={yaml.safe_dump(value, default_flow_style=True)}"]
        before = _digest(inputs)
        command = "run" if i % 10 == 0 else "validate"
        extra = ["--out", str(tmp_path / f"r{i}"), "--quiet"] if command == "run" else []
        code, err = _call([command, str(pipe), *overrides, *extra], capsys)
        _check(f"pipeline case {i}", code, err)
        assert _digest(inputs) == before


def test_fuzzed_flags_end_in_exit_0_or_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a fuzzed flag writes stays in the temporary folder
    rng = np.random.default_rng(SEED + 2)
    for _ in range(100):
        argv = [str(rng.choice(FLAGS)) for _ in range(int(rng.integers(1, 6)))]
        if argv[0] == "run" and "--out" not in argv:
            continue  # a valid run of nothing is not what this test is after
        code, err = _call(argv, capsys)
        _check(f"flags {argv}", code, err)
