"""Pipeline files: validation with key paths, overrides, schema, safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pcdkit.core import pipeline
from pcdkit.errors import ConfigError, PcdkitError

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "job": {"plugin": "evaluate", "limit": 1},
    "dataset": {"plugin": "procedural", "resolution": 500, "shapes": ["cube"]},
    "corruption": {"plugin": "gaussian", "std": 0.02},
    "metrics": ["chamfer", {"plugin": "p2m", "min_triangle_area": 0.0}],
}


def _problems(config: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        pipeline.validate(config, source="x.yaml")
    return dict(err.value.problems)


def test_valid_pipeline_fills_defaults() -> None:
    pipe = pipeline.validate(BASE)
    assert pipe.device == "auto" and pipe.seed == 0
    assert pipe.slots["backbone"].spec.name == "identity"
    resolved = pipe.resolved()
    assert resolved["metrics"][0] == {"plugin": "chamfer", "squared": True, "norm": 2,
                                      "direction": "both", "backend": "auto"}


@pytest.mark.parametrize(
    ("patch", "key", "fragment"),
    [
        ({"datset": {}}, "datset", "did you mean 'dataset'"),
        ({"dataset": {"plugin": "procedural", "resolutoin": 5}}, "dataset.resolutoin",
         "did you mean 'resolution'"),
        ({"dataset": {"plugin": "procedural", "resolution": "many"}}, "dataset.resolution",
         "expected int"),
        ({"corruption": {"plugin": "gausian"}}, "corruption.plugin", "did you mean 'gaussian'"),
        ({"metrics": ["chamfer", {"plugin": "p2m", "direction": "sideways"}]},
         "metrics[1].direction", "expected one of"),
        ({"seed": 1.5}, "seed", "expected int"),
        ({"device": "gpu"}, "device", "expected auto, cpu, cuda or cuda:N"),
        ({"corruption": {"plugin": "gaussian", "std": -1}}, "corruption.std", "must be >= 0"),
    ],
)
def test_invalid_settings_name_the_key_path(patch: dict, key: str, fragment: str) -> None:
    problems = _problems(BASE | patch)
    assert key in problems, problems
    assert fragment in problems[key]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(BASE | {"seed": "x", "colour": 1, "dataset": {"plugin": "nope"}})
    assert {"seed", "colour", "dataset.plugin"} <= set(problems)


def test_missing_job_lists_available_jobs() -> None:
    assert "evaluate" in _problems({"dataset": "procedural"})["job"]


def test_overrides_set_nested_values_and_index_lists() -> None:
    cfg = pipeline.apply_overrides(BASE, ["dataset.resolution=700", "metrics.1.direction="
                                          "point_to_face", "metrics.0=hausdorff", "seed=3"])
    pipe = pipeline.validate(cfg)
    assert pipe.slots["dataset"].settings["resolution"] == 700
    assert pipe.slots["metrics"][1].settings["direction"] == "point_to_face"
    assert pipe.slots["metrics"][0].spec.name == "hausdorff"
    assert pipe.seed == 3
    assert BASE["dataset"]["resolution"] == 500  # the input mapping is not modified


def test_floats_written_without_a_dot_are_accepted() -> None:
    cfg = pipeline.apply_overrides(BASE, ["corruption.std=5e-3"])
    assert pipeline.validate(cfg).slots["corruption"].settings["std"] == 0.005
    with pytest.raises(ConfigError, match="expected float"):
        pipeline.validate(pipeline.apply_overrides(BASE, ["corruption.std=lots"]))


def test_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="key.path=value"):
        pipeline.apply_overrides(BASE, ["no-equals-sign"])
    with pytest.raises(ConfigError, match="not an index"):
        pipeline.apply_overrides(BASE, ["metrics.7.norm=1"])


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    f = tmp_path / "evil.yaml"
    f.write_text("job: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(PcdkitError, match="invalid YAML"):
        pipeline.load(f)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("job: evaluate\ndataset: [unclosed\n")
    with pytest.raises(PcdkitError, match=r"broken\.yaml.*line"):
        pipeline.load(f)


def test_schema_accepts_shipped_pipelines_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = pipeline.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for f in sorted((REPO / "pipelines").glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(f.read_text())))
        assert not errors, (f, errors[:1])
    assert list(validator.iter_errors(BASE | {"datset": 1}))
    assert list(validator.iter_errors(BASE | {"corruption": {"plugin": "gaussian", "sd": 1}}))


def test_shipped_pipelines_validate_up_to_the_files_they_read() -> None:
    for f in sorted((REPO / "pipelines").glob("*.yaml")):
        try:
            pipeline.load(f)
        except ConfigError as exc:  # e.g. reference.pt, which each user converts or fetches
            assert all(msg.startswith("not found: ") or "is not fetched yet" in msg
                       for _, msg in exc.problems), exc


def test_validate_reports_a_missing_input_file_before_any_run(tmp_path: Path) -> None:
    cfg = {"job": "evaluate", "dataset": {"plugin": "mesh-folder", "root": str(tmp_path / "no")}}
    with pytest.raises(ConfigError, match="dataset.root: not found: .*working directory"):
        pipeline.validate(cfg)
