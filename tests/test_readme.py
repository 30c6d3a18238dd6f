"""README and CI agree: the README's test command is the one .ci/run executes."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    readme = (REPO / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1: readme.index("```", readme.index("```bash") + 1)]
    assert len(block) == 2
    assert "pcdkit run" in block[0]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == block[1]


def test_readme_plugin_example_registers_and_evaluates(tmp_path: Path) -> None:
    import types

    from pcdkit.core import pipeline
    from pcdkit.core.registry import Registry
    from pcdkit.core.runner import run_pipeline

    readme = (REPO / "README.md").read_text()
    start = readme.index("```python\n# my_plugins.py")
    code = readme[start + len("```python\n"): readme.index("```", start + 10)]
    module = types.ModuleType("my_plugins")
    exec(compile(code, "README.md", "exec"), module.__dict__)  # noqa: S102 - our own README
    reg = Registry(group=None)
    reg.register_module(module, "my_plugins", distribution="readme-example")
    cfg = {"device": "cpu", "job": "evaluate", "dataset": {"plugin": "spheres", "count": 2},
           "corruption": {"plugin": "jitter", "std": 0.02}, "backbone": "shrink",
           "metrics": [{"plugin": "chamfer"}, {"plugin": "spread"}]}
    from pcdkit.builtin import jobs as builtin_jobs
    from pcdkit.builtin import metrics as builtin_metrics

    reg.register_module(builtin_jobs, "jobs")
    reg.register_module(builtin_metrics, "metrics")
    _, metrics = run_pipeline(pipeline.validate(cfg, registry=reg), out=tmp_path / "run",
                              quiet=True)
    assert metrics["shapes"] == 2 and metrics["summary"]["chamfer"] > 0
    assert metrics["summary"]["spread"] > 0
    job = {"device": "cpu", "job": {"plugin": "mean-radius", "scale": 2.0},
           "dataset": {"plugin": "spheres", "count": 2}}
    _, out = run_pipeline(pipeline.validate(job, registry=reg), out=tmp_path / "job", quiet=True)
    assert out["mean_radius"] == pytest.approx(2.0)  # unit spheres
