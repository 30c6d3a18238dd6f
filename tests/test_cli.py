"""The pcdkit command line: exit codes, messages, run directories, repeatability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pcdkit.cli import main

SMALL = {
    "name": "tiny",
    "job": {"plugin": "evaluate"},
    "dataset": {"plugin": "procedural", "resolution": 400, "shapes": ["cube", "torus"],
                "sampler": "uniform"},
    "corruption": {"plugin": "gaussian", "std": 0.02},
    "metrics": ["chamfer", "p2m"],
    "device": "cpu",
    "seed": 5,
}


@pytest.fixture
def small(tmp_path: Path) -> Path:
    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(SMALL))
    return f


def test_run_writes_config_metrics_log_and_tables(small: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", str(small), "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "metrics.json", "log.txt",
                                               "per_shape.csv", "per_shape.md"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["shapes"] == 2 and metrics["summary"]["chamfer"] > 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["corruption"] == {"plugin": "gaussian", "std": 0.02, "relative": True}
    assert "run directory" in capsys.readouterr().out


def test_same_seed_gives_identical_metrics_and_new_seed_differs(small: Path,
                                                                tmp_path: Path) -> None:
    def run(out: str, *extra: str) -> dict:
        assert main(["run", str(small), "--out", str(tmp_path / out), "--quiet", *extra]) == 0
        return json.loads((tmp_path / out / "metrics.json").read_text())["summary"]

    a, b, c = run("a"), run("b"), run("c", "--set", "seed=6")
    assert a == b
    assert a != c


def test_default_run_directories_never_collide(small: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for _ in range(2):
        assert main(["run", str(small), "--root", str(root), "--quiet"]) == 0
    runs = sorted((root / "tiny").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)


def test_existing_output_directory_is_never_overwritten(small: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "keep"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    assert main(["run", str(small), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "mine"


def test_run_directory_inside_an_input_is_refused(tmp_path: Path, standin: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "meshes"
    data.mkdir()
    (data / "duck.off").write_bytes((standin / "duck.off").read_bytes())
    cfg = SMALL | {"dataset": {"plugin": "mesh-folder", "root": str(data), "resolution": 300,
                               "cache": False}}
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(f), "--out", str(data / "run")]) == 2
    assert "inside the input" in capsys.readouterr().err


def test_invalid_pipeline_exits_2_with_key_path(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(SMALL | {"dataset": {"plugin": "procedural", "resolutin": 3}}))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: dataset.resolutin" in err and "did you mean 'resolution'" in err


def test_missing_pipeline_file_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "does-not-exist.yaml"]) == 2
    assert "not found" in capsys.readouterr().err


def test_cuda_request_without_cuda_is_a_clear_error(small: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["run", str(small), "--set", "device=cuda", "--out", str(tmp_path / "r")]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_plugins_list_json_and_show(capsys: pytest.CaptureFixture) -> None:
    assert main(["plugins", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "metric", "name": "p2m"}.items() <= next(
        r for r in rows if r["name"] == "p2m").items()
    assert main(["plugins", "show", "metric", "p2m"]) == 0
    assert "min_triangle_area" in capsys.readouterr().out
    assert main(["plugins", "show", "job", "evaluate"]) == 0
    assert "metrics: list of metric plugin" in capsys.readouterr().out
    assert main(["plugins", "show", "metric", "p2n"]) == 2


def test_schema_command_prints_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["device"]["pattern"].startswith("^(auto")


def test_every_run_gets_a_self_contained_report_and_the_cli_prints_the_table(
        small: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from html.parser import HTMLParser

    out = tmp_path / "run"
    assert main(["run", str(small), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| cube |" in printed and "report.html" in printed

    class Page(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.cells, self.links, self.in_td = [], [], False

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.in_td = tag == "td"
            self.links += [v for k, v in attrs if k in ("src", "href")]

        def handle_data(self, data: str) -> None:
            if self.in_td:
                self.cells.append(data)

    page = Page()
    page.feed((out / "report.html").read_text())
    per_shape = json.loads((out / "metrics.json").read_text())["per_shape"]
    scaled = f"{per_shape[0]['chamfer'] * 1e4:.4f}"
    assert "cube" in page.cells and scaled in page.cells  # the table, x 1e4
    assert all(link.startswith("data:") for link in page.links)  # nothing to fetch


def test_progress_lines_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture) -> None:
    from pcdkit.core.context import _progress_lines

    assert list(_progress_lines(range(3), "steps", 3, every=0.0)) == [0, 1, 2]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("pcdkit: steps 3/3 after")
