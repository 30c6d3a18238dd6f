"""Bad input and faults: one clear line and exit 2, never a traceback, nothing lost."""

from __future__ import annotations

import errno
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pcdkit.backbones.score_denoise.denoise import MULTINOMIAL_MAX, _draw
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import FORMAT
from pcdkit.cli import main
from pcdkit.core.atomic import atomic_write
from pcdkit.core.registry import Registry
from pcdkit.core.rundir import RunDir
from pcdkit.errors import PcdkitError, PluginError
from pcdkit.plugin import PluginSpec

CLOUD = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
EVAL = {"name": "tiny", "device": "cpu", "job": {"plugin": "evaluate"},
        "dataset": {"plugin": "procedural", "resolution": 300, "shapes": ["cube"],
                    "sampler": "uniform"}, "metrics": ["chamfer"]}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Exit code and stderr of the CLI; argparse's own exits count as their code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


def one_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("pcdkit: error: "), err
    assert len(err.strip().splitlines()) <= 3 and len(err) < 600, err
    for needle in needles:
        assert needle in err, err


def _denoise(cloud: Path, ckpt: Path, out: Path, capsys: pytest.CaptureFixture,
             *extra: str) -> tuple[int, str]:
    return run_cli(["denoise", str(cloud), "-o", str(out), "--checkpoint", str(ckpt), *extra],
                   capsys)


# -- clouds -------------------------------------------------------------------------------------
def test_too_small_cloud_names_the_neighbourhood_size(tmp_path: Path, checkpoint: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "ten.npy"
    np.save(f, CLOUD[:10])
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), "at least 17 points")
    assert not (tmp_path / "o.xyz").exists()


@pytest.mark.parametrize(("value", "needle"), [(1e39, "infinite"), (1e30, "exceed")])
def test_coordinates_float32_cannot_hold_are_refused(tmp_path: Path, checkpoint: Path,
                                                     capsys: pytest.CaptureFixture,
                                                     value: float, needle: str) -> None:
    f = tmp_path / "big.npy"
    arr = CLOUD.astype(np.float64)
    arr[5, 1] = value
    np.save(f, arr)
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), str(f), needle)


@pytest.mark.parametrize("arr", [CLOUD.T.copy(), CLOUD.reshape(-1), CLOUD[None]])
def test_transposed_flat_or_batched_arrays_are_not_read_as_clouds(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture, arr: np.ndarray) -> None:
    f = tmp_path / "odd.npy"
    np.save(f, arr)
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), "(N, 3)")


def test_npy_header_declaring_a_huge_shape_is_refused_before_allocating(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (10**12, 3)})
    f = tmp_path / "huge.npy"
    f.write_bytes(buf.getvalue() + CLOUD.tobytes())
    start = time.perf_counter()
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), "declares shape")
    assert time.perf_counter() - start < 5


def test_object_arrays_and_foreign_npz_members_are_refused(tmp_path: Path, checkpoint: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([CLOUD, None], dtype=object), allow_pickle=True)
    one_error(*_denoise(obj, checkpoint, tmp_path / "o.xyz", capsys), "Python objects")
    import zipfile

    npz = tmp_path / "odd.npz"
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("points.txt", "1 2 3\n")
    one_error(*_denoise(npz, checkpoint, tmp_path / "o.xyz", capsys), "points.txt")


@pytest.mark.parametrize(("text", "needle"), [
    ("ply\nformat ascii 1.0\nelement vertex -5\nproperty float x\nproperty float y\n"
     "property float z\nend_header\n", "negative"),
    ("ply\nformat binary_little_endian 1.0\nelement vertex 999999999999\nproperty float x\n"
     "property float y\nproperty float z\nend_header\n", "at most"),
])
def test_ply_header_counts_are_checked(tmp_path: Path, checkpoint: Path,
                                       capsys: pytest.CaptureFixture, text: str,
                                       needle: str) -> None:
    f = tmp_path / "bad.ply"
    f.write_bytes(text.encode() + CLOUD.tobytes())
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), needle)


def test_off_with_negative_counts_is_refused(tmp_path: Path, checkpoint: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "bad.off"
    f.write_text("OFF\n-3 1 0\n0 0 0\n")
    one_error(*_denoise(f, checkpoint, tmp_path / "o.xyz", capsys), "negative")


def test_kmeans_draws_beyond_the_multinomial_limit() -> None:
    weights = torch.zeros(MULTINOMIAL_MAX + 5)
    weights[-2] = 1.0
    assert int(_draw(weights, torch.Generator().manual_seed(0))) == MULTINOMIAL_MAX + 3


def test_denoising_a_mesh_file_warns_that_faces_are_ignored(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "mesh.off"
    rows = "\n".join(" ".join(map(str, p)) for p in CLOUD[:40])
    f.write_text(f"OFF\n40 1 0\n{rows}\n3 0 1 2\n")
    code, err = _denoise(f, checkpoint, tmp_path / "o.xyz", capsys)
    assert code == 0 and "pcdkit: warning:" in err and "faces are ignored" in err


# -- OS errors ----------------------------------------------------------------------------------
def test_output_inside_a_file_or_with_a_too_long_name_is_one_line(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.npy"
    np.save(src, CLOUD)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(*_denoise(src, checkpoint, blocker / "o.xyz", capsys), str(blocker))
    one_error(*_denoise(src, checkpoint, tmp_path / ("n" * 300 + ".xyz"), capsys))
    one_error(*_denoise(src, checkpoint, tmp_path / "o.obj", capsys), ".obj")


def test_root_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump(EVAL))
    root = tmp_path / "root"
    root.write_text("x")
    one_error(*run_cli(["run", str(pipe), "--root", str(root), "--quiet"], capsys), "root")


def test_render_refuses_a_non_image_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.npy"
    np.save(src, CLOUD)
    one_error(*run_cli(["render", str(src), "-o", str(tmp_path / "view.xyz")], capsys), ".png")
    assert not (tmp_path / "view.xyz").exists()


def test_write_error_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def full(fh: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(PcdkitError, match="disk full"):
        atomic_write(target, full)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# -- checkpoints --------------------------------------------------------------------------------
@pytest.mark.parametrize(("payload", "needle"), [
    ({"format": FORMAT, "version": 1, "model": "score-denoise", "config": "[1, 2]",
      "state_dict": {}}, "mappings"),
    ({"format": FORMAT, "version": 1, "model": "score-denoise", "config": "{}",
      "state_dict": {"w": "text"}}, "tensors"),
    ({"format": FORMAT, "version": 1, "model": "score-denoise", "config": "{}",
      "state_dict": {"w": torch.full((3,), float("nan"))}}, "NaN"),
])
def test_checkpoint_contents_are_checked_after_the_safe_load(
        tmp_path: Path, capsys: pytest.CaptureFixture, payload: dict, needle: str) -> None:
    ckpt = tmp_path / "c.pt"
    torch.save(payload, ckpt)
    src = tmp_path / "in.npy"
    np.save(src, CLOUD)
    one_error(*_denoise(src, ckpt, tmp_path / "o.xyz", capsys), str(ckpt), needle)


def test_convert_refuses_a_nan_network_and_a_converted_file(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in ScoreDenoiseNet().state_dict().items()}
    src = tmp_path / "nan.pt"
    torch.save({"state_dict": state}, src)
    one_error(*run_cli(["convert", "score-denoise", str(src), str(tmp_path / "o.pt")], capsys),
              "NaN")
    one_error(*run_cli(["convert", "score-denoise", str(checkpoint), str(tmp_path / "o.pt")],
                       capsys), "already a pcdkit checkpoint")
    assert not (tmp_path / "o.pt").exists()


# -- settings and YAML --------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "needle"), [
    ("corruption.std=.nan", "finite"), ("seed=18446744073709551616", "seed"),
    ("dataset.resolution=1000000000000", "<= 10000000"),
    ("dataset.resolution=1e12", "resolution"),
])
def test_nan_and_absurd_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             override: str, needle: str) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump(EVAL | {"corruption": {"plugin": "gaussian"}}))
    one_error(*run_cli(["validate", str(pipe), "--set", override], capsys), needle)


def test_absurd_batch_size_and_passes_are_refused(tmp_path: Path, checkpoint: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"job": {"plugin": "train-denoiser", "batch_size": 10**8,
                                            "lr": float("nan")},
                                    "datasets": ["procedural"]}))
    code, err = run_cli(["validate", str(pipe)], capsys)
    assert code == 2 and "job.batch_size" in err and "job.lr" in err and "Traceback" not in err
    src = tmp_path / "in.npy"
    np.save(src, CLOUD)
    one_error(*_denoise(src, checkpoint, tmp_path / "o.xyz", capsys, "--passes", "1000000000"),
              "--passes")


def test_yaml_alias_bomb_is_refused_fast_with_a_short_message(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    pipe = tmp_path / "bomb.yaml"
    pipe.write_text("\n".join(lines) + "\njob: evaluate\n")
    start = time.perf_counter()
    one_error(*run_cli(["validate", str(pipe)], capsys), "expands")
    assert time.perf_counter() - start < 5
    deep = tmp_path / "deep.yaml"
    deep.write_text("job: " + "[" * 2000 + "]" * 2000 + "\n")
    one_error(*run_cli(["validate", str(deep)], capsys), "nested")


def test_a_fifo_given_as_pipeline_does_not_hang(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    one_error(*run_cli(["validate", str(fifo)], capsys), "not a regular file")


# -- run directories ----------------------------------------------------------------------------
def test_run_names_cannot_escape_the_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump(EVAL | {"name": ".."}))
    root = tmp_path / "root" / "runs"
    assert run_cli(["run", str(pipe), "--root", str(root), "--quiet"], capsys)[0] == 0
    assert [p.parent for p in root.glob("*/*")] == [root / "run"]


def test_simultaneous_runs_never_share_a_directory(tmp_path: Path) -> None:
    made: list[Path] = []

    def create() -> None:
        made.append(RunDir.create("same", root=tmp_path).path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8


def test_a_second_resume_of_one_run_is_refused(tmp_path: Path) -> None:
    first = RunDir.create("r", out=tmp_path / "run")
    (first.path / "config.yaml").write_text("job: {plugin: evaluate}\n")
    with pytest.raises(PcdkitError, match="another pcdkit process"):
        RunDir.resume(first.path)
    first.close()
    (first.path / ".last.pt.abc.tmp").write_bytes(b"half")
    again = RunDir.resume(first.path)
    assert not (first.path / ".last.pt.abc.tmp").exists()
    again.close()


def test_a_run_failing_before_its_job_starts_leaves_no_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({
        "job": {"plugin": "train-denoiser", "freeze_batchnorm": True, "bn_recalibration": 2},
        "datasets": ["procedural"]}))
    one_error(*run_cli(["run", str(pipe), "--out", str(tmp_path / "run")], capsys),
              "bn_recalibration")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["truncate", "random", "empty", "keys", "config"])
def test_damaged_resume_directories_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 damage: str) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({
        "name": "t", "device": "cpu", "job": {
            "plugin": "train-denoiser", "iterations": 2, "batch_size": 1, "patch_size": 100,
            "checkpoint_every": 1, "val_shapes": 0},
        "backbone": {"plugin": "score-denoise", "num_points": 8, "frame_knn": 8},
        "datasets": [{"plugin": "procedural", "resolution": 300, "shapes": ["cube"],
                      "sampler": "uniform"}]}))
    run = tmp_path / "run"
    assert run_cli(["run", str(pipe), "--out", str(run), "--quiet"], capsys)[0] == 0
    state = run / "checkpoints" / "last.pt"
    data = state.read_bytes()
    if damage == "truncate":
        state.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        state.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "keys":
        torch.save({"step": 1}, state)
    else:
        (run / "config.yaml").write_text("job: [unclosed\n")
    one_error(*run_cli(["run", str(pipe), "--resume", str(run), "--quiet",
                        "--set", "job.iterations=3"], capsys), str(run))


# -- plugins ------------------------------------------------------------------------------------
def test_a_plugin_module_that_exits_at_import_is_reported_not_obeyed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hostile_mod.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = PluginSpec("metric", "hostile", "hostile_mod:make", distribution="evil", version="1")
    with pytest.raises(PluginError, match=r"metric plugin 'hostile' \(evil 1\).*SystemExit"):
        spec.resolve()


def test_a_factory_that_raises_is_reported_with_its_plugin(tmp_path: Path) -> None:
    def broken() -> None:
        raise ZeroDivisionError("boom")

    spec = PluginSpec("metric", "fragile", broken, distribution="thirdparty", version="0.1")
    with pytest.raises(PluginError, match=r"'fragile' \(thirdparty 0.1\) failed.*boom"):
        spec.create({})


def test_a_misspelled_hook_is_listed_as_broken() -> None:
    import types

    from pcdkit.core.hookspecs import hookimpl

    module = types.ModuleType("typo")

    @hookimpl
    def pcdkit_metric() -> list:
        return []

    module.pcdkit_metric = pcdkit_metric  # type: ignore[attr-defined]
    reg = Registry(group=None)
    reg.register_module(module, "typo")
    rows = [r for r in reg.list() if r.name == "typo"]
    assert rows and "did you mean 'pcdkit_metrics'" in rows[0].status


def test_a_resume_that_logs_more_columns_keeps_the_old_rows(tmp_path: Path) -> None:
    run = RunDir.create("h", out=tmp_path / "run")
    run.append_history({"step": 1, "loss": 0.5}, ["step", "loss"])
    run.close()
    (run.path / "config.yaml").write_text("job: {plugin: evaluate}\n")
    again = RunDir.resume(run.path)
    again.append_history({"step": 2, "loss": 0.4, "val": 3.0}, ["step", "loss", "val"])
    again.close()
    assert (run.path / "metrics.csv").read_text().splitlines() == [
        "step,loss,val", "1,0.5,", "2,0.4,3.0"]


def test_an_unknown_plugin_names_the_broken_ones_that_might_provide_it() -> None:
    import types

    from pcdkit.core.hookspecs import hookimpl

    module = types.ModuleType("halfbroken")

    @hookimpl
    def pcdkit_metrics() -> list:
        raise ImportError("needs a package that is not installed")

    module.pcdkit_metrics = pcdkit_metrics  # type: ignore[attr-defined]
    reg = Registry(group=None)
    reg.register_module(module, "halfbroken", distribution="pcdkit-extra")
    with pytest.raises(PluginError, match="failed to load and may provide it.*pcdkit-extra"):
        reg.get("metric", "f-score")


def test_a_plugin_of_the_right_kind_but_the_wrong_contract_fails_before_work(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"job": "train-dynamics", "device": "cpu",
                                    "dataset": {"plugin": "procedural", "resolution": 50}}))
    one_error(*run_cli(["run", str(pipe), "--out", str(tmp_path / "run")], capsys),
              "dataset plugin 'procedural'", "provides ShapeSequence", "needs a PanelData")
    assert not (tmp_path / "run").exists()  # refused at validation: no run directory

