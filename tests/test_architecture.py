"""The package's shape: no private names shared, no import circles, training kept to itself,
streaming/long-input drivers that only drive, and a data path that never doubles back.

These rules are read from the source (``ast``), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

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
    GRAPH = {**saved, "speechface.audio": saved["speechface.audio"] | {"speechface.speech"}}
    try:
        assert any("speechface.audio" in c and "speechface.speech" in c for c in _cycles())
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
                 if t.startswith(("speechface.audio.features", "speechface.speech.estimators",
                                  "speechface.speech")))
    assert bad == []
    text = MODULES[driver].read_text()
    assert "isinstance(estimator" not in text and "isinstance(fx" not in text


# --------------------------------------------------------------------------- the data path
def _component(module: str) -> str:
    """A sub-package is one component (``speechface.audio.features.logmel`` -> ``speechface.audio.features``);
    a top-level module is one."""
    parts = module.split(".")
    if len(parts) > 2 and f"{parts[0]}.{parts[1]}" in MODULES and \
            MODULES[f"{parts[0]}.{parts[1]}"].name == "__init__.py":
        return ".".join(parts[:2])
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
    import speechface.audio as audio
    from speechface import speech as speech_module

    real = audio._check_rate

    def calls_back(*a):  # noqa: ANN002 - audio calling into speech: speech -> audio -> speech
        speech_module.estimator_class("au17")
        return real(*a)

    monkeypatch.setattr(audio, "_check_rate", calls_back)
    est = AUEstimator.create("mlp")
    chains = _trace(lambda: est.load(np.zeros(1000, np.float32), 16000))
    assert ["speechface.speech", "speechface.audio", "speechface.speech"] in chains
