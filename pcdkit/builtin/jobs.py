"""Built-in job plugins."""

from __future__ import annotations

from pcdkit.plugin import Param, PluginSpec, Slot, hookimpl


@hookimpl
def pcdkit_jobs() -> list[PluginSpec]:
    """evaluate."""
    return [
        PluginSpec(
            "job", "evaluate", "pcdkit.jobs.evaluate:EvaluateJob",
            doc="Corrupt every shape of a dataset, optionally run a backbone, score with the "
                "metrics under the unit-sphere protocol; per-shape CSV/Markdown and the mean.",
            params=(
                Param("limit", int | None, None, "evaluate only the first N shapes", minimum=1),
                Param("save_clouds", bool, False, "write input/output clouds as .xyz"),
                Param("score_input", bool, True,
                      "also score the corrupted input when a backbone runs"),
                Param("table_scale", float, 1e4, "factor for the Markdown table (papers: 1e4)"),
            ),
            slots=(
                Slot("dataset", "dataset", doc="shapes to evaluate"),
                Slot("corruption", "corruption", required=False,
                     doc="applied to each clean cloud (omit to score the clouds as given)"),
                Slot("backbone", "backbone", required=False, default="identity",
                     doc="denoiser applied to the corrupted cloud"),
                Slot("metrics", "metric", many=True, default=["chamfer", "p2m"],
                     doc="metrics to report"),
            ),
        ),
    ]
