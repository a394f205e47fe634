"""The package's shape: a top level that reads as the pipeline, no private names shared, no
import circles, training kept to itself, streaming/long-input drivers that only drive, and a data
path that never doubles back.

These rules are read from the source (``ast``), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speechface
from speechface import AUEstimator, LandmarkEstimator, SpeechEstimator

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "speechface"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}

#: The top level of the package: one package per stage of the data path, plus the shared core,
#: the packaged models and the CLI. A new module goes into the stage it belongs to
#: (docs/architecture.md); a new entry here is a decision about the layout, not a convenience.
TOP_LEVEL = {
    "__init__.py", "version.py", "py.typed",
    "core",        # errors, registries, model folders (PretrainedModel), results, I/O helpers
    "audio",       # file / array / stream -> 16 kHz samples -> feature frames (audio.features)
    "speech",      # feature frames -> predictions (estimators, streaming and long-input drivers)
    "spaces",      # conditioning spaces and the transforms between them
    "render",      # photo + conditions -> video (face, translators, paste-back, video, animate)
    "avatars",     # condition tracks -> avatar files and live streams
    "teachers",    # faces -> labels (MediaPipe, expression recognisers)
    "data",        # datasets, readers, prepared shards and targets
    "training",    # recipes on the shared engine
    "evaluation",  # held-out tables, metrics, calibration, figures
    "pretrained",  # the packaged model folders
    "cli",         # the speechface command
}


def test_the_top_level_holds_only_the_stage_packages() -> None:
    found = {p.name for p in PKG.iterdir()  # (a folder left holding only bytecode is gone)
             if p.name != "__pycache__" and not p.name.startswith(".")
             and not (p.is_dir() and {q.name for q in p.iterdir()} <= {"__pycache__"})}
    assert found - TOP_LEVEL == set(), (
        "new entries at the top of src/speechface: put the module into its stage package "
        "(docs/architecture.md), or agree on a new stage and add it to TOP_LEVEL")
    assert TOP_LEVEL - found == set()


@pytest.mark.parametrize("package", sorted(p for p in TOP_LEVEL if "." not in p))
def test_every_top_level_package_says_what_flows_in_and_out(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PKG / package / "__init__.py").read_text())) or ""
    assert "In:" in doc and "Out:" in doc, f"{package}/__init__.py: say what flows in and out"


def _imports(name: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, imported module, names)`` of every import in module ``name`` (any depth)."""
    path = MODULES[name]
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []


def _edges(name: str) -> set[str]:
    """The package modules that module ``name`` imports."""
    out = set()
    for _, target, names in _imports(name):
        if not target.startswith("speechface"):
            continue
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
        out.update(subs or ([target] if target in MODULES else []))
        if len(subs) < len(names) and target in MODULES:
            out.add(target)
    out.discard(name)
    return out


GRAPH = {m: _edges(m) for m in MODULES}


def test_no_private_name_is_imported_across_modules() -> None:
    bad = [f"{MODULES[m].relative_to(SRC)}:{line}: from {target} import {n}"
           for m in MODULES for line, target, names in _imports(m)
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert bad == [], ("private names imported from another module (make them public where "
                       "shared, or move them):\n" + "\n".join(bad))


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(GRAPH):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def test_no_import_circle_among_the_package_modules() -> None:
    assert _cycles() == [], "modules that import each other (directly or through others)"


def test_the_cycle_finder_finds_a_circle() -> None:
    global GRAPH
    saved = GRAPH
    GRAPH = {**saved, "speechface.audio.waveform":
             saved["speechface.audio.waveform"] | {"speechface.speech.model"}}
    try:
        assert any("speechface.audio.waveform" in c and "speechface.speech.model" in c
                   for c in _cycles())
    finally:
        GRAPH = saved


def test_nothing_outside_training_and_the_cli_imports_training() -> None:
    bad = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() for t in ts
                 if t.startswith("speechface.training")
                 and not m.startswith(("speechface.training", "speechface.cli")))
    assert bad == [], "inference code depends on the training wing:\n" + "\n".join(bad)


@pytest.mark.parametrize("driver", ["speechface.speech.streaming", "speechface.speech.longform"])
def test_streaming_and_longform_only_drive_the_components(driver: str) -> None:
    """No concrete feature extractor, network or estimator class is imported (so no
    ``isinstance`` dispatch and no re-implemented forward): they use the components' stream
    protocols."""
    bad = sorted(t for t in GRAPH[driver]
                 if t == "speechface.speech" or
                 t.startswith(("speechface.audio.features", "speechface.speech.estimators",
                               "speechface.speech.model")))
    assert bad == []
    text = MODULES[driver].read_text()
    assert "isinstance(estimator" not in text and "isinstance(fx" not in text


# --------------------------------------------------------------------------- the data path
def _component(module: str) -> str:
    """A module is one component, except inside a component package (a package within a stage,
    whose modules are one family: ``speechface.audio.features.logmel`` ->
    ``speechface.audio.features``, ``speechface.speech.estimators.cnn`` ->
    ``speechface.speech.estimators``)."""
    parts = module.split(".")
    if len(parts) > 3 and ".".join(parts[:3]) in MODULES and \
            MODULES[".".join(parts[:3])].name == "__init__.py":
        return ".".join(parts[:3])
    return module


def _trace(fn) -> list[list[str]]:
    """Run ``fn``; return every chain of components on the call stack in which a component
    appears twice (a call that comes back into a component it passed through)."""
    doubled: dict[tuple[str, ...], None] = {}

    def prof(frame, event, arg):  # noqa: ANN001
        if event != "call":
            return
        chain: list[str] = []
        f = frame
        while f is not None:
            mod = f.f_globals.get("__name__", "")
            if mod.startswith("speechface"):
                comp = _component(mod)
                if not chain or chain[-1] != comp:
                    chain.append(comp)
            f = f.f_back
        if len(set(chain)) < len(chain):
            doubled[tuple(reversed(chain))] = None

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return [list(c) for c in doubled]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    x, sr = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    assert sr == 16000
    return x[:48_000]


@pytest.mark.parametrize("how", ["whole", "blocks", "48kHz-blocks", "stream", "whisper-blocks",
                                 "mfcc-utterance-blocks"])
def test_the_audio_argument_of_predict_never_comes_back_to_a_component(how: str,
                                                                       speech: np.ndarray
                                                                       ) -> None:
    est = AUEstimator.create("cnn")
    if how == "whole":
        run = lambda: est.predict(speech, 16000)  # noqa: E731
    elif how == "blocks":
        run = lambda: est.predict(EXAMPLES / "speech.wav", chunk_seconds=1.3)  # noqa: E731
    elif how == "48kHz-blocks":
        x48 = np.repeat(speech, 3)
        run = lambda: est.predict(x48, 48000, chunk_seconds=0.7)  # noqa: E731
    elif how == "whisper-blocks":  # overlapping encoder windows (OverlapWindowStream)
        wh = AUEstimator.create("cnn", feature="whisper",
                                feature_args={"window_seconds": 1.0, "overlap_seconds": 0.4})
        run = lambda: wh.predict(speech, 16000, chunk_seconds=0.7)  # noqa: E731
    elif how == "mfcc-utterance-blocks":  # mel blocks + finish; a network that cannot stream
        mf = SpeechEstimator.create("lstm_mfcc")
        run = lambda: mf.predict(speech, 16000, chunk_seconds=0.7)  # noqa: E731
    else:
        st = LandmarkEstimator.create("cnn_gru").stream()  # made before: the audio goes to push

        def run() -> None:
            for i in range(0, len(speech), 3001):
                st.push(speech[i:i + 3001])
            st.flush()
    assert _trace(run) == []


def test_the_tracer_sees_a_component_called_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from speechface.audio import waveform
    from speechface.speech import model as speech_model

    real = waveform._check_rate

    def calls_back(*a):  # noqa: ANN002 - audio calling into speech: speech -> audio -> speech
        speech_model.estimator_class("au17")
        return real(*a)

    monkeypatch.setattr(waveform, "_check_rate", calls_back)
    est = AUEstimator.create("mlp")
    chains = _trace(lambda: est.load(np.zeros(1000, np.float32), 16000))
    assert ["speechface.speech.model", "speechface.audio.waveform",
            "speechface.speech.model"] in chains


def test_the_tracer_sees_a_call_back_into_a_component_package() -> None:
    """Modules of one component package count as one component."""
    assert _component("speechface.audio.features.logmel") == "speechface.audio.features"
    assert _component("speechface.speech.estimators.cnn_gru") == "speechface.speech.estimators"
    assert _component("speechface.speech.longform") == "speechface.speech.longform"
    assert _component("speechface.audio.features") == "speechface.audio.features"


# --------------------------------------------------------------------------- references
REPO = SRC.parent
#: ``speechface.<module>.<name>`` in text (not a URL, not a format tag such as ``speechface.estimator/1``)
_REFERENCE = re.compile(r"(?<![\w/.-])speechface((?:\.\w+)+)(?![\w/])")


def _names_a_missing_module(parts: list[str]) -> bool:
    """``speechface.<parts>`` whose first step is neither a package module nor a public name."""
    here = PKG
    for i, part in enumerate(parts):
        if (here / part / "__init__.py").is_file():
            here = here / part
            continue
        if (here / f"{part}.py").is_file() or i > 0:
            return False  # a module, or a name inside a package (not checked here)
        return not (part in speechface.__all__ or part.startswith("__"))
    return False


def test_references_name_modules_that_exist() -> None:
    """Docs, docstrings, comments, configs and scripts name modules by their current paths (the
    changelog and the packaged model configs are history and are not read)."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files")
    bad = []
    for name in listed.stdout.split():
        path = REPO / name
        if name == "CHANGELOG.md" or name.endswith(".json") or path.suffix not in {
                ".py", ".md", ".yml", ".yaml", ".toml", ".sh", ".txt"} or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            bad += [f"{name}:{n}: {m.group(0)}" for m in _REFERENCE.finditer(line)
                    if _names_a_missing_module(m.group(1).split(".")[1:])]
    assert bad == [], "references to modules that do not exist (moved?):\n" + "\n".join(bad)


def test_the_reference_check_sees_a_moved_module() -> None:
    assert _names_a_missing_module(["translators", "Translator"])
    assert _names_a_missing_module(["metrics"])
    assert not _names_a_missing_module(["render", "translators", "Translator"])
    assert not _names_a_missing_module(["animate"])  # the public function
    assert not _names_a_missing_module(["audio", "load_audio"])
    assert _REFERENCE.search("FORMAT = 'speechface.estimator/1'") is None
    assert _REFERENCE.search("https://speechface.readthedocs.io") is None
