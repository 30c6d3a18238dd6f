"""README and CI agree: the README's test command is the one .ci/run executes."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    readme = (REPO / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1: readme.index("```", readme.index("```bash") + 1)]
    assert len(block) == 2
    assert "pcdkit run" in block[0]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == block[1]
