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


def test_ci_runs_the_readme_commands_in_a_fresh_virtual_environment() -> None:
    """A venv without system site-packages is made and activated before the README's command."""
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    venv = [i for i, ln in enumerate(code) if re.search(r"\bpython3? -m venv\b", ln)]
    assert venv, "CI must create a virtual environment with python -m venv"
    assert not any("system-site-packages" in ln for ln in code)
    activate = [i for i, ln in enumerate(code) if re.fullmatch(r'(source|\.) "?\S*/bin/activate"?', ln)]
    assert activate and activate[0] > venv[0]
    test_cmd = code.index(_readme_commands()[1])
    assert activate[0] < test_cmd
    assert not any(re.search(r"\b(pip|python)\b", ln) for ln in code[: venv[0]]), \
        "nothing may be installed into the outer Python before the venv exists"


def _declared_dev_distributions() -> set[str]:
    """Names of the distributions that `pip install -e ".[dev]"` asks for directly."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names: set[str] = set()
    todo, seen = ["dev"], set()
    for req in project["dependencies"]:
        names.add(canonicalize_name(Requirement(req).name))
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "speechface":
                todo.extend(req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names


def test_every_module_the_tests_import_is_declared_in_dev() -> None:
    """A clean `pip install -e ".[dev]"` must be enough to collect and run every test file."""
    import ast
    import importlib.metadata as md
    import sys

    from packaging.utils import canonicalize_name

    local = {p.stem for p in (REPO / "tests").glob("*.py")} | {"speechface"}
    imported: set[str] = set()
    for path in (REPO / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = sorted(imported - local - set(sys.stdlib_module_names))
    assert {"numpy", "torch", "pytest", "scipy"} <= set(third_party)
    provided = md.packages_distributions()
    declared = _declared_dev_distributions()
    missing = []
    for module in third_party:
        # a module not installed here (tomli on 3.11) counts when a declared name matches it
        dists = {canonicalize_name(d) for d in provided.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    assert not missing, f"tests import modules that [dev] does not declare: {missing}"
