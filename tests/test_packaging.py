"""The package is complete: README commands match CI, typed marker, example inputs, versions."""

from __future__ import annotations

import re
from pathlib import Path

import speechface

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- commands -->")[1].split("<!-- /commands -->")[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip().startswith("pip install")]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    cmds = _readme_commands()
    assert len(cmds) == 2, cmds
    ci = (REPO / ".ci" / "run").read_text()
    assert cmds[1] in ci.splitlines(), "CI must run the README's test command verbatim"
    for c in cmds:  # the CPU wheel here, and no bare 'torch' that would pull the CUDA build
        assert "torch==2.13.0" in c


def test_typed_and_versioned() -> None:
    pkg = Path(speechface.__file__).parent
    assert (pkg / "py.typed").exists()
    assert re.fullmatch(r"\d+\.\d+\.\d+", speechface.__version__)
    assert speechface.__version__ in (REPO / "CHANGELOG.md").read_text()


def test_example_inputs_are_present_and_documented() -> None:
    data = REPO / "examples" / "data"
    for name in ("speech.wav", "astronaut.jpg"):
        assert (data / name).stat().st_size > 1000
        assert name in (data / "README.md").read_text()
