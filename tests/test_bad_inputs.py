"""A catalogue of bad (and valid-but-unusual) inputs and the behaviour each must get.

Errors: a typed exception deriving from ``SpeechfaceError`` whose message names the file and the
problem; from the command line: one ``speechface: error: ...`` line, a non-zero exit code, no
traceback and no (partial) output file. Valid inputs: a result of the right shape.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from conftest import EXAMPLES, SHARED
from speechface import AUEstimator, EmotionEstimator
from speechface.cli import main
from speechface.core.errors import (
    AudioError,
    DataError,
    ImageError,
    ModelError,
    NoFaceError,
    SpeechfaceError,
)
from speechface.data.openface import read_openface_csv, to_frame_grid
from speechface.render.face import detect_faces, find_face, load_image, select_face
from speechface.render.translators import Translator

REPO = Path(__file__).resolve().parents[1]
SPEECH = EXAMPLES / "speech.wav"
ASTRONAUT = EXAMPLES / "astronaut.jpg"


@dataclass
class Case:
    """One input: how to make it, and the error it must give (None: valid) or the check it
    must pass."""

    id: str
    make: Callable[[Path], Path]
    error: type[SpeechfaceError] | None = None
    needle: str = ""
    check: Callable[..., None] | None = None
    cli: bool = True


def _cli_fails_cleanly(argv: list[str], out: Path, needles: list[str], capsys) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("speechface: error:")
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.stem}")]


# =========================================================================== audio
def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    return np.stack([x, 0.5 * x], 1) if channels == 2 else x


def _wav(name: str, data: np.ndarray, rate: int = 16000, **kw) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        sf.write(d / name, data, rate, **kw)
        return d / name
    return make


def _bytes(name: str, content: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(content() if callable(content) else content)
        return d / name
    return make


def _nan_wav(value: float) -> np.ndarray:
    x = _tone(1.0, 16000)
    x[100] = value
    return x


def _corrupt_header() -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, _tone(1.0, 16000), 16000, format="WAV")
    b = bytearray(buf.getvalue())
    b[20:36] = b"\xff" * 16  # the 'fmt ' chunk body
    return bytes(b)


def _truncated_data() -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, _tone(1.0, 16000), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()[:44 + 2 * 5000]  # the header announces 16000 samples, 5000 follow


def _frames(n: int, tol: int = 0) -> Callable[..., None]:
    def check(values: np.ndarray) -> None:
        assert abs(len(values) - n) <= tol, (len(values), n)
        assert values.shape[1] == 17 and np.isfinite(values).all()
    return check


def _dir(name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).mkdir()
        return d / name
    return make


AUDIO = [
    Case("missing", lambda d: d / "missing.wav", AudioError, "does not exist"),
    Case("directory", _dir("folder.wav"), AudioError, "is a directory"),
    Case("empty-0-bytes", _bytes("empty.wav", b""), AudioError, "is empty (0 bytes)"),
    Case("one-sample", _wav("one.wav", np.zeros(1, np.float32)), AudioError, "too short: 0.1 ms"),
    Case("header-only", _wav("nodata.wav", np.zeros(0, np.float32)), AudioError, "has no samples"),
    Case("nan-samples", _wav("nan.wav", _nan_wav(np.nan), subtype="FLOAT"), AudioError,
         "NaN or infinite samples (first at sample 100, 0.006 s)"),
    Case("inf-samples", _wav("inf.wav", _nan_wav(np.inf), subtype="FLOAT"), AudioError,
         "NaN or infinite samples"),
    Case("corrupt-header", _bytes("corrupt.wav", _corrupt_header), AudioError,
         "is not a readable audio file (corrupt or unsupported format"),
    Case("text-renamed-wav", _bytes("notes.wav", b"just some text\n" * 50), AudioError,
         "is not a readable audio file"),
    Case("random-bytes-flac", _bytes("noise.flac", lambda: os.urandom(4000)), AudioError,
         "is not a readable audio file"),
    Case("silence", _wav("silence.wav", np.zeros(16000, np.float32)), check=_frames(25)),
    Case("8kHz", _wav("r8k.wav", _tone(1.0, 8000), 8000), check=_frames(25)),
    Case("22.05kHz", _wav("r22k.wav", _tone(1.0, 22050), 22050), check=_frames(25)),
    Case("44.1kHz", _wav("r44k.wav", _tone(1.0, 44100), 44100), check=_frames(25)),
    Case("48kHz", _wav("r48k.wav", _tone(1.0, 48000), 48000), check=_frames(25)),
    Case("24-bit", _wav("pcm24.wav", _tone(1.0, 16000), subtype="PCM_24"), check=_frames(25)),
    Case("stereo", _wav("stereo.wav", _tone(1.0, 16000, 2)), check=_frames(25)),
    Case("flac", _wav("a.flac", _tone(1.0, 16000)), check=_frames(25)),
    Case("ogg-vorbis", _wav("a.ogg", _tone(1.0, 16000)), check=_frames(25, tol=1)),
    Case("mp3", _wav("a.mp3", _tone(1.0, 16000)), check=_frames(25, tol=2)),  # codec delay
    Case("truncated-data", _bytes("trunc.wav", _truncated_data), check=_frames(5000 // 640)),
]


@pytest.fixture(scope="module")
def est() -> AUEstimator:
    torch.manual_seed(0)
    return AUEstimator.create("mlp")


@pytest.mark.parametrize("case", AUDIO, ids=[c.id for c in AUDIO])
def test_audio_api(case: Case, est: AUEstimator, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    if case.error is None:
        case.check(est.predict(path).values)
        return
    with pytest.raises(case.error) as e:
        est.predict(path)
    assert isinstance(e.value, SpeechfaceError)
    assert path.name in str(e.value) and case.needle in str(e.value), str(e.value)


@pytest.mark.parametrize("case", AUDIO, ids=[c.id for c in AUDIO])
def test_audio_cli(case: Case, tmp_path: Path, capsys) -> None:
    path = case.make(tmp_path)
    out = tmp_path / "out" / "aus.csv"
    out.parent.mkdir()
    argv = ["predict", str(path), "-o", str(out), "--random-weights", "mlp"]
    if case.error is None:
        assert main(argv) == 0
        rows = out.read_text().splitlines()
        case.check(np.zeros((len(rows) - 1, 17)))
        return
    _cli_fails_cleanly(argv, out, [path.name, case.needle], capsys)


def test_audio_arrays_and_rates(est: AUEstimator) -> None:
    with pytest.raises(AudioError, match="sample_rate is required"):
        est.predict(np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match=r"speech.wav' is 16000 Hz but sample_rate=8000"):
        est.predict(SPEECH, 8000)
    with pytest.raises(AudioError, match="positive finite number"):
        est.predict(np.zeros(16000, np.float32), float("nan"))
    with pytest.raises(AudioError, match="unsupported sample type complex"):
        est.predict(np.zeros(16000, np.complex64), 16000)


# =========================================================================== images
def _img(name: str, fn: Callable[[], Image.Image], **save) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        fn().save(d / name, **save)
        return d / name
    return make


def _rgb_check(pixel: tuple[int, int, int] | None = None) -> Callable[..., None]:
    def check(arr: np.ndarray) -> None:
        assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8
        if pixel is not None:
            assert tuple(int(v) for v in arr[0, 0]) == pixel, arr[0, 0]
    return check


def _truncated_jpeg() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(
        buf, format="JPEG")
    return buf.getvalue()[:3000]


IMAGES = [
    Case("grayscale", _img("grey.png", lambda: Image.new("L", (64, 48), 77)),
         check=_rgb_check((77, 77, 77))),
    Case("rgba-transparent", _img("rgba.png", lambda: Image.new("RGBA", (64, 48), (9, 9, 9, 0))),
         check=_rgb_check((255, 255, 255))),
    Case("cmyk-jpeg", _img("cmyk.jpg", lambda: Image.new("CMYK", (64, 48), (0, 0, 0, 0))),
         check=_rgb_check()),
    Case("16-bit-png", _img("g16.png", lambda: Image.fromarray(np.full((48, 64), 65535, np.uint16))),
         check=_rgb_check((255, 255, 255))),
    Case("palette", _img("pal.png", lambda: Image.new("RGB", (64, 48), (10, 200, 30)).convert(
        "P", palette=Image.Palette.ADAPTIVE)), check=_rgb_check((10, 200, 30))),
    Case("8x8", _img("tiny.png", lambda: Image.new("RGB", (8, 8))), ImageError, "too small: 8x8"),
    Case("missing", lambda d: d / "missing.jpg", ImageError, "not found"),
    Case("directory", _dir("folder.jpg"), ImageError, "is a directory"),
    Case("empty-0-bytes", _bytes("empty.jpg", b""), ImageError, "is empty (0 bytes)"),
    Case("corrupt", _bytes("corrupt.jpg", lambda: os.urandom(3000)), ImageError,
         "is not an image PIL can read"),
    Case("truncated-jpeg", _bytes("cut.jpg", _truncated_jpeg), ImageError, "cannot read"),
    Case("text-renamed-png", _bytes("notes.png", b"hello\n" * 100), ImageError,
         "is not an image PIL can read"),
]


@pytest.mark.parametrize("case", IMAGES, ids=[c.id for c in IMAGES])
def test_image_api(case: Case, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    if case.error is None:
        case.check(load_image(path))
        return
    with pytest.raises(case.error) as e:
        load_image(path)
    assert path.name in str(e.value) and case.needle in str(e.value), str(e.value)


@pytest.mark.parametrize("case", [c for c in IMAGES if c.error],
                         ids=[c.id for c in IMAGES if c.error])
def test_image_cli(case: Case, tmp_path: Path, capsys) -> None:
    path = case.make(tmp_path)
    out = tmp_path / "out" / "talk.mp4"
    out.parent.mkdir()
    _cli_fails_cleanly(["animate", str(SPEECH), str(path), "-o", str(out), "--quiet"], out,
                       [path.name, case.needle], capsys)


def _landmarker(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mediapipe")
    model = Path(os.environ.get("SPEECHFACE_FACE_LANDMARKER") or
                 SHARED / "models" / "face_landmarker.task")
    if not model.is_file():
        pytest.skip(f"FaceLandmarker model not found at {model} (set SPEECHFACE_SHARED)")
    monkeypatch.setenv("SPEECHFACE_FACE_LANDMARKER", str(model))


@pytest.mark.parametrize("size", [256, 8000], ids=["grey-256px", "plain-8000x8000"])
def test_image_without_a_face(size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys) -> None:
    _landmarker(monkeypatch)
    path = tmp_path / f"plain{size}.jpg"
    Image.new("RGB", (size, size), (120, 130, 140)).save(path, quality=80)
    with pytest.raises(NoFaceError, match=rf"no face found in '.*plain{size}.jpg'"):
        find_face(path)
    if size == 256:  # the command line (the 8000 px decode is paid once only)
        out = tmp_path / "out" / "talk.gif"
        out.parent.mkdir()
        _cli_fails_cleanly(["animate", str(SPEECH), str(path), "-o", str(out), "--quiet"], out,
                           [path.name, "no face found"], capsys)


def test_two_faces_largest_by_default_index_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    _landmarker(monkeypatch)
    astro = load_image(ASTRONAUT)
    canvas = np.full((512, 900, 3), 200, np.uint8)
    canvas[:, 388:] = astro
    canvas[40:400, 0:360] = np.asarray(Image.fromarray(astro).resize((360, 360)))
    faces = detect_faces(canvas)
    assert len(faces) == 2 and faces[0].center[0] < faces[1].center[0]
    assert select_face(faces) is faces[1]  # the largest
    assert find_face(canvas, face_index=0).center[0] < 388
    with pytest.raises(NoFaceError, match="face_index=2 but 2 faces were found in two.jpg"):
        select_face(faces, 2, name="two.jpg")


# =========================================================================== models
@pytest.fixture(scope="module")
def good_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    AUEstimator.create("mlp").save_pretrained(d / "mlp")
    AUEstimator.create("cnn").save_pretrained(d / "cnn")
    EmotionEstimator.create("mlp").save_pretrained(d / "emotion")
    Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1).save_pretrained(
        d / "translator")
    return d


def _variant(edit: Callable[[Path, Path], None], base: str = "mlp") -> Callable[[Path, Path], Path]:
    def make(d: Path, models: Path) -> Path:
        shutil.copytree(models / base, d / "model")
        edit(d / "model", models)
        return d / "model"
    return make


def _edit_config(**changes) -> Callable[[Path, Path], None]:
    def edit(folder: Path, models: Path) -> None:
        cfg = json.loads((folder / "config.json").read_text())
        for k, v in changes.items():
            cfg[k] = v(cfg) if callable(v) else v
        (folder / "config.json").write_text(json.dumps(cfg))
    return edit


def _edit_weights(fn: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def edit(folder: Path, models: Path) -> None:
        w = folder / "model.safetensors"
        w.write_bytes(fn(w.read_bytes()))
    return edit


def _nan_weights(folder: Path, models: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key][0] = float("nan")
    save_file(state, str(folder / "model.safetensors"))


def _corrupt_header_bytes(b: bytes) -> bytes:
    return b[:8] + b"{\x00garbage" + b[18:]


def _rm(name: str) -> Callable[[Path, Path], None]:
    return lambda folder, models: (folder / name).unlink()


def _swap_config(folder: Path, models: Path) -> None:  # a cnn config over mlp weights
    shutil.copy(models / "cnn" / "config.json", folder / "config.json")


MODELS = [
    Case("missing-folder", lambda d, m: d / "nope", ModelError, "model folder not found"),
    Case("a-file-not-a-folder", lambda d, m: (d / "weights.bin").write_bytes(b"x") and
         d / "weights.bin", ModelError, "is a folder with config.json"),
    Case("no-config", _variant(_rm("config.json")), ModelError, "not a model folder"),
    Case("no-weights", _variant(_rm("model.safetensors")), ModelError,
         "model.safetensors: missing"),
    Case("truncated-safetensors", _variant(_edit_weights(lambda b: b[:len(b) // 2])), ModelError,
         "not a readable safetensors file"),
    Case("tampered-safetensors-header", _variant(_edit_weights(_corrupt_header_bytes)),
         ModelError, "not a readable safetensors file"),
    Case("nan-weights", _variant(_nan_weights), ModelError, "NaN or infinite"),
    Case("config-of-another-architecture", _variant(_swap_config), ModelError,
         "weights do not fit the architecture"),
    Case("unknown-architecture", _variant(_edit_config(architecture="zzz")), ModelError,
         "unknown estimator 'zzz'"),
    Case("config-not-json", _variant(lambda f, m: (f / "config.json").write_text("{oops")),
         ModelError, "not valid JSON"),
    Case("feature-size-mismatch",
         _variant(_edit_config(feature={"name": "mfcc", "args": {}})), ModelError,
         "39 features per frame but the network expects 80"),
    Case("label-mismatch", _variant(_edit_config(labels=lambda c: c["labels"][::-1])),
         ModelError, "label names do not match"),
    Case("mismatched-space", lambda d, m: m / "emotion", ModelError,
         "predicts emotion8, not au17", cli=False),  # the CLI loads any space with --model
    Case("translator-as-estimator", lambda d, m: m / "translator", ModelError,
         "translator model, not a estimator"),
]


@pytest.mark.parametrize("case", MODELS, ids=[c.id for c in MODELS])
def test_model_api(case: Case, tmp_path: Path, good_model: Path) -> None:
    path = case.make(tmp_path, good_model)
    with pytest.raises(case.error) as e:
        AUEstimator.from_pretrained(path)
    assert str(path) in str(e.value) and case.needle in str(e.value), str(e.value)


@pytest.mark.parametrize("case", [c for c in MODELS if c.cli],
                         ids=[c.id for c in MODELS if c.cli])
def test_model_cli(case: Case, tmp_path: Path, good_model: Path, capsys) -> None:
    path = case.make(tmp_path, good_model)
    out = tmp_path / "out" / "aus.csv"
    out.parent.mkdir()
    _cli_fails_cleanly(["predict", str(SPEECH), "-o", str(out), "--model", str(path)], out,
                       [path.name, case.needle], capsys)


def test_good_model_folder_loads(good_model: Path) -> None:
    assert AUEstimator.from_pretrained(good_model / "mlp").network.arch == "mlp"


# =========================================================================== OpenFace CSVs
AU_COLS = [f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]


def _openface(d: Path, name: str, fps: float = 30.0, n: int = 30, *, drop: str | None = None,
              nan_rows: tuple[int, ...] = (), fail_rows: tuple[int, ...] = (),
              times: np.ndarray | None = None) -> Path:
    cols = ["frame", "face_id", "timestamp", "confidence", "success"] + AU_COLS
    cols = [c for c in cols if c != drop]
    t = np.arange(n) / fps if times is None else times
    lines = [", ".join(cols)]  # OpenFace writes a space after each comma
    for i in range(n):
        row = {"frame": i + 1, "face_id": 0, "timestamp": round(float(t[i]), 3),
               "confidence": 0.98, "success": 0 if i in fail_rows else 1}
        row.update({c: ("nan" if i in nan_rows else f"{t[i]:.4f}") for c in AU_COLS})
        lines.append(", ".join(str(row[c]) for c in cols))
    (d / name).write_text("\n".join(lines) + "\n")
    return d / name


def test_openface_missing_au_columns(tmp_path: Path) -> None:
    path = _openface(tmp_path, "noau45.csv", drop="AU45_r")
    with pytest.raises(DataError, match=r"noau45.csv: missing AU columns AU45_r"):
        read_openface_csv(path)


@pytest.mark.parametrize("kind,needle", [
    ("missing", "CSV file not found"), ("empty", "empty CSV"), ("header-only", "no rows"),
    ("no-timestamp", "no 'timestamp' column"), ("decreasing-time", "timestamps must increase"),
])
def test_openface_unusable_files(kind: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.csv"
    if kind == "empty":
        path.write_text("")
    elif kind == "header-only":
        path.write_text("frame, timestamp, " + ", ".join(AU_COLS) + "\n")
    elif kind == "no-timestamp":
        _openface(tmp_path, path.name, drop="timestamp")
    elif kind == "decreasing-time":
        _openface(tmp_path, path.name, times=np.arange(30)[::-1] / 30.0)
    with pytest.raises(DataError, match=needle) as e:
        read_openface_csv(path)
    assert path.name in str(e.value)


def test_openface_nan_and_failed_rows_are_masked_not_errors(tmp_path: Path) -> None:
    track = read_openface_csv(_openface(tmp_path, "gaps.csv", nan_rows=(5,), fail_rows=(9, 20)))
    assert len(track) == 30 and np.isnan(track.aus[5]).all()
    assert not track.valid[[5, 9, 20]].any() and track.valid.sum() == 27
    grid, mask = to_frame_grid(track.times, track.aus, track.valid, n_frames=25)
    assert np.isfinite(grid).all()
    assert mask[:24].all()  # a single bad row is bridged by linear interpolation
    np.testing.assert_allclose(grid[mask, 0], np.arange(25)[mask] / 25, atol=2e-3)


@pytest.mark.parametrize("fps", [30.0, 25.0, 29.97])
def test_openface_frame_rates_resample_onto_25fps(fps: float, tmp_path: Path) -> None:
    n = int(round(2 * fps))
    track = read_openface_csv(_openface(tmp_path, "track.csv", fps=fps, n=n))
    assert track.fps == pytest.approx(fps, rel=0.01)
    grid, mask = to_frame_grid(track.times, track.aus, track.valid, n_frames=50)
    assert mask[:49].all()
    # the AU values equal the time stamp: linear interpolation must give t = n / 25
    np.testing.assert_allclose(grid[mask, 3], np.arange(50)[mask] / 25, atol=2e-3)


# =========================================================================== no pickle
def _pickle_problems(src: str, where: str = "<src>") -> list[str]:
    """Unpickling in Python source: ``pickle``-family imports and calls, ``torch.load`` without
    ``weights_only=True``, ``allow_pickle=True``."""
    problems = []
    if re.search(r"allow_pickle\s*=\s*True", src):
        problems.append(f"{where}: allow_pickle=True")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "joblib")
                   for n in names):
                problems.append(f"{where}:{node.lineno}: imports {names}")
        elif isinstance(node, ast.Call):
            fn = ast.unparse(node.func)
            kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if fn.split(".")[-1] == "load" and "torch" in fn and kw.get("weights_only") != "True":
                problems.append(f"{where}:{node.lineno}: {fn} without weights_only=True")
            if "pickle" in fn.lower():
                problems.append(f"{where}:{node.lineno}: {fn}")
    return problems


@pytest.mark.parametrize("snippet", [
    "import pickle", "from pickle import loads", "import dill as d", "torch.load('x.pt')",
    "torch.load(f, weights_only=False)", "np.load('a.npz', allow_pickle=True)",
    "import io\nio.pickle_thing()",
])
def test_the_pickle_scan_catches(snippet: str) -> None:
    assert _pickle_problems(snippet)


def test_no_module_unpickles() -> None:
    """No ``pickle`` import/use, every ``torch.load`` has ``weights_only=True``, no
    ``allow_pickle=True``, anywhere in the package (words in docstrings do not count)."""
    problems = []
    for path in sorted((REPO / "src" / "speechface").rglob("*.py")):
        problems += _pickle_problems(path.read_text(), str(path.relative_to(REPO)))
    assert not problems, problems
    assert not _pickle_problems("torch.load(f, map_location='cpu', weights_only=True)")


# =========================================================================== the CLI, hardened
# Each case runs the command line in a folder that holds every input; afterwards the folder
# must be exactly as before (inputs byte-identical, no output, no partial or temporary file),
# and stderr one "speechface: error:" line naming the user's path, without a traceback.
def _snapshot(root: Path) -> dict[str, str]:
    import hashlib
    import stat

    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = "link->" + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = "dir"
            elif stat.S_ISREG(st.st_mode):
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                state[rel] = f"special {stat.S_IFMT(st.st_mode)}"
    return state


def _fails(argv: list[str], root: Path, needles: list[str], capsys, code: int = 2) -> str:
    """Run the CLI; check the exit code, one clean line with ``needles``, ``root`` unchanged."""
    before = _snapshot(root)
    got = main(argv)
    err = capsys.readouterr().err
    assert got == code, (got, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("speechface: error:"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert _snapshot(root) == before
    return lines[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with copies of the example speech and photo and an out/ folder."""
    shutil.copy(SPEECH, tmp_path / "speech.wav")
    shutil.copy(ASTRONAUT, tmp_path / "photo.jpg")
    (tmp_path / "out").mkdir()
    return tmp_path


def _predict(work: Path, out: str, *extra: str) -> list[str]:
    return ["predict", str(work / "speech.wav"), "-o", out, "--random-weights", "mlp", *extra]


def _setup_output(kind: str, work: Path, name: str = "aus.csv") -> str:
    """An output argument of the given kind (creating what it points to)."""
    out = work / "out"
    if kind == "onto-input-wav":
        return str(work / "speech.wav")
    if kind == "onto-photo":
        return str(work / "photo.jpg")
    if kind == "xyz-extension":
        return str(out / "aus.xyz")
    if kind == "no-extension":
        return str(out / "aus")
    if kind == "input-named-csv":  # an audio file called .csv, then -o onto it
        shutil.copy(work / "speech.wav", work / "speech.csv")
        return str(work / "speech.csv")
    if kind == "link-to-input":
        shutil.copy(work / "speech.wav", work / "speech.csv")
        (out / "aus.csv").symlink_to(work / "speech.csv")
        return str(out / "aus.csv")
    if kind == "fifo":
        os.mkfifo(out / "aus.csv")
        return str(out / "aus.csv")
    if kind == "link-to-dev-full":
        (out / "aus.csv").symlink_to("/dev/full")
        return str(out / "aus.csv")
    if kind == "link-to-dev-null":
        (out / "aus.csv").symlink_to("/dev/null")
        return str(out / "aus.csv")
    if kind == "a-directory":
        (out / "aus.csv").mkdir()
        return str(out / "aus.csv")
    if kind == "missing-folder":
        return str(out / "nope" / name)
    if kind == "parent-is-a-file":
        (out / "file.txt").write_text("x")
        return str(out / "file.txt" / "aus.csv")
    if kind == "dangling-link-to-missing-folder":
        (out / "aus.csv").symlink_to(work / "gone" / "aus.csv")
        return str(out / "aus.csv")
    if kind == "empty":
        return ""
    raise AssertionError(kind)


OUTPUTS = [
    ("onto-input-wav", "unsupported output type '.wav'"),
    ("onto-photo", "unsupported output type '.jpg'"),
    ("xyz-extension", "unsupported output type '.xyz'"),
    ("no-extension", "unsupported output type '(none)'"),
    ("input-named-csv", "is also an input of this command"),
    ("link-to-input", "is also an input of this command"),
    ("fifo", "FIFO"),
    ("link-to-dev-full", "device node"),
    ("link-to-dev-null", "device node"),
    ("a-directory", "it is a directory"),
    ("missing-folder", "does not exist"),
    ("parent-is-a-file", "is not a folder"),
    ("dangling-link-to-missing-folder", "symbolic link"),
    ("empty", "output path is empty"),
]


@pytest.mark.parametrize("kind,needle", OUTPUTS, ids=[k for k, _ in OUTPUTS])
def test_predict_output_refused(kind: str, needle: str, work: Path, capsys) -> None:
    out = _setup_output(kind, work)
    argv = _predict(work, out)
    if kind in ("input-named-csv", "link-to-input"):  # the speech file is speech.csv here
        argv[1] = str(work / "speech.csv")
    _fails(argv, work, [out, needle], capsys)


ANIMATE_OUTPUTS = [
    ("onto-input-wav", "unsupported output type '.wav'"),
    ("xyz-extension", "unsupported output type '.xyz'"),
    ("missing-folder", "does not exist"),
    ("a-directory", "unsupported output type '.csv'"),
]


@pytest.mark.parametrize("kind,needle", ANIMATE_OUTPUTS, ids=[k for k, _ in ANIMATE_OUTPUTS])
def test_animate_output_refused(kind: str, needle: str, work: Path, capsys) -> None:
    out = _setup_output(kind, work, "talk.mp4")
    _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o", out, "--quiet"],
           work, [out, needle], capsys)


def test_animate_output_onto_its_own_photo(work: Path, capsys) -> None:
    Image.open(work / "photo.jpg").save(work / "photo.gif")
    out = str(work / "photo.gif")
    _fails(["animate", str(work / "speech.wav"), out, "-o", out, "--quiet"], work,
           [out, "is also an input"], capsys)


def test_animate_output_mp4_fifo_and_stdout(work: Path, capsys) -> None:
    os.mkfifo(work / "out" / "talk.mp4")
    fifo = str(work / "out" / "talk.mp4")
    _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o", fifo, "--quiet"],
           work, [fifo, "FIFO"], capsys)
    _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o", "-", "--quiet"],
           work, ["'-'", "standard output"], capsys)


def test_symlinked_output_is_written_through(work: Path, capsys) -> None:
    real = work / "out" / "real.csv"
    real.write_text("old\n")
    link = work / "out" / "aus.csv"
    link.symlink_to(real)
    assert main(_predict(work, str(link))) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("frame,timestamp,AU01_r")
    assert sorted(p.name for p in (work / "out").iterdir()) == ["aus.csv", "real.csv"]


def test_dash_writes_the_csv_to_stdout(work: Path, capsys) -> None:
    before = _snapshot(work)
    assert main(_predict(work, "-")) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("frame,timestamp,AU01_r")
    assert len(captured.out.splitlines()) == 1 + 221  # 8.84 s at 25 fps, the header
    assert _snapshot(work) == before


def test_stale_temp_files_of_dead_writers_are_removed(work: Path) -> None:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()  # a PID that is gone
    out = work / "out" / "aus.csv"
    stale = work / "out" / f".aus.csv.sf{proc.pid}.abcd1234.tmp"
    live = work / "out" / f".aus.csv.sf{os.getppid()}.abcd1234.tmp"
    other = work / "out" / ".notes.txt.sf1.abcd1234.tmp"  # another file's: not ours to touch
    for p in (stale, live, other):
        p.write_bytes(b"")
    assert main(_predict(work, str(out))) == 0
    assert out.is_file() and not stale.exists() and live.exists() and other.exists()


DEVICES = [("cuda", "no CUDA GPU is available"), ("cuda:7", "cuda:7"),
           ("bogus", "not a torch device name"), ("tpu", "not a torch device name")]


@pytest.mark.parametrize("device,needle", DEVICES, ids=[d for d, _ in DEVICES])
def test_predict_device_refused(device: str, needle: str, work: Path, capsys) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _fails(_predict(work, str(work / "out" / "aus.csv"), "--device", device), work,
           [f"--device {device}".replace(" ", " '" if device in ("bogus", "tpu") else " "),
            needle], capsys)


@pytest.mark.parametrize("device", ["cuda", "bogus"])
def test_animate_device_refused(device: str, work: Path, capsys) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o",
            str(work / "out" / "t.mp4"), "--device", device, "--quiet"], work, [device], capsys)


@pytest.mark.parametrize("args,needle", [
    (["--face-index", "-1"], "--face-index -1"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--max-seconds", "1"], "lasts 9 s"),
], ids=["face-index-minus-1", "batch-size-0", "max-seconds"])
def test_animate_options_refused_before_work(args: list[str], needle: str, work: Path,
                                             capsys) -> None:
    _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o",
            str(work / "out" / "t.mp4"), "--quiet", *args], work, [needle], capsys)


def test_two_hour_speech_refused_up_front(work: Path, capsys) -> None:
    """animate refuses speech over --max-seconds (default 1 h) from the file header."""
    long = work / "two_hours.wav"
    sf.write(long, np.zeros(7200 * 1000, np.uint8).view(np.uint8).astype(np.float32), 1000,
             subtype="PCM_U8")
    _fails(["animate", str(long), str(work / "photo.jpg"), "-o", str(work / "out" / "t.mp4"),
            "--quiet"], work, [str(long), "lasts 7200 s", "--max-seconds 3600"], capsys)


def test_predict_max_seconds(work: Path, capsys) -> None:
    _fails(_predict(work, str(work / "out" / "aus.csv"), "--max-seconds", "2"), work,
           [str(work / "speech.wav"), "lasts 9 s"], capsys)


# --------------------------------------------------------------------------- stdin
def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_of_zero_bytes_refused_at_once(work: Path, monkeypatch, capsys) -> None:
    _stdin(monkeypatch, b"\0" * (1 << 20))
    _fails(["predict", "-", "-o", str(work / "out" / "aus.csv"), "--random-weights", "mlp"],
           work, ["audio on stdin", "zero bytes"], capsys)


def test_stdin_size_limit(work: Path, monkeypatch, capsys) -> None:
    _stdin(monkeypatch, (work / "speech.wav").read_bytes())
    _fails(["predict", "-", "-o", str(work / "out" / "aus.csv"), "--random-weights", "mlp",
            "--max-input-mb", "0.05"], work, ["audio on stdin", "--max-input-mb 0.05"], capsys)


def test_stdin_max_seconds(work: Path, monkeypatch, capsys) -> None:
    _stdin(monkeypatch, (work / "speech.wav").read_bytes())
    _fails(["predict", "-", "-o", str(work / "out" / "aus.csv"), "--random-weights", "mlp",
            "--max-seconds", "1"], work, ["audio on stdin", "--max-seconds 1"], capsys)


# --------------------------------------------------------------------------- model configs
def _deep(n: int) -> str:
    return "[" * n + "]" * n


CONFIGS = [  # (id, edit of the parsed config or raw text, needle)
    ("dropout-nan", lambda c: c["model_args"].update(dropout="@NaN@"), "not a finite number"),
    ("dropout-infinity", lambda c: c["model_args"].update(dropout="@Infinity@"),
     "not a finite number"),
    ("dropout-1.5", lambda c: c["model_args"].update(dropout=1.5), "outside [0, 0.999]"),
    ("labels-5", lambda c: c.update(labels=5), "'labels' must be list or null"),
    ("labels-of-numbers", lambda c: c.update(labels=list(range(17))), "list of strings"),
    ("info-5", lambda c: c.update(info=5), "'info' must be dict or null"),
    ("architecture-5", lambda c: c.update(architecture=5), "'architecture' must be str"),
    ("pretrained-yes", lambda c: c.update(pretrained="yes"), "'pretrained' must be bool"),
    ("model-args-list", lambda c: c.update(model_args=[1, 2]), "'model_args' must be dict"),
    ("width-1e9", lambda c: c["model_args"].update(hidden=[10**9]), "is larger than 16384"),
    ("widths-30000x30000", lambda c: c["model_args"].update(hidden=[30000, 30000]),
     "is larger than 16384"),
    ("widths-16000x16000", lambda c: c["model_args"].update(hidden=[16000, 16000]),
     "a network of about"),
    ("negative-width", lambda c: c["model_args"].update(hidden=[-5]), "is negative"),
    ("n-fft-134217728", lambda c: c["feature"]["args"].update(n_fft=134217728),
     "feature.args.n_fft = 134217728 is outside"),
    ("n-mels-0", lambda c: c["feature"]["args"].update(n_mels=0), "feature.args.n_mels = 0"),
    ("list-of-100000", lambda c: c["model_args"].update(hidden=[1] * 100000), "entries"),
    ("nested-100000-deep", lambda c: c.update(info="@DEEP@"), "nested more than 16 levels"),
    ("2-MB-file", lambda c: c.update(name="x" * (2 << 20)), "larger than 1,048,576 bytes"),
    ("not-an-object", lambda c: "@LIST@", "must be a JSON object"),
]


def _write_config(folder: Path, edit: Callable[[dict], object]) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    result = edit(cfg)
    text = json.dumps([1, 2] if result == "@LIST@" else cfg)
    text = text.replace('"@NaN@"', "NaN").replace('"@Infinity@"', "Infinity")
    text = text.replace('"@DEEP@"', _deep(100_000))
    (folder / "config.json").write_text(text)


@pytest.mark.parametrize("cid,edit,needle", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_model_config_refused(cid: str, edit, needle: str, work: Path, good_model: Path,
                              capsys) -> None:
    folder = work / "model"
    shutil.copytree(good_model / "mlp", folder)
    _write_config(folder, edit)
    _fails(["predict", str(work / "speech.wav"), "-o", str(work / "out" / "aus.csv"), "--model",
            str(folder)], work, [str(folder / "config.json"), needle], capsys)


def test_model_config_is_not_a_regular_file(work: Path, good_model: Path, capsys) -> None:
    folder = work / "model"
    shutil.copytree(good_model / "mlp", folder)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to("/dev/zero")
    _fails(["predict", str(work / "speech.wav"), "-o", str(work / "out" / "aus.csv"), "--model",
            str(folder)], work, [str(folder / "config.json"), "not a regular file"], capsys)


def test_local_model_path_that_does_not_exist(work: Path, monkeypatch, capsys) -> None:
    (work / "runs").mkdir()
    monkeypatch.chdir(work)
    _fails(["predict", "speech.wav", "-o", "out/aus.csv", "--model", "runs/best"], work,
           ["runs/best", "model folder not found"], capsys)


def test_packaged_configs_pass_the_schema() -> None:
    from speechface.core.config_schema import read_model_config

    folders = sorted((REPO / "src" / "speechface" / "pretrained").glob("*/config.json"))
    assert folders
    for cfg in folders:
        read_model_config(cfg)


# --------------------------------------------------------------------------- audio sources
def _mp4(path: Path, audio: bool) -> Path:
    from speechface.render.result import Animation

    pytest.importorskip("av")
    frames = np.zeros((25, 32, 32, 3), np.uint8)
    Animation(frames, audio=_tone(1.0, 16000) if audio else None).save(path)
    return path


def test_video_given_as_speech_uses_its_audio_track(work: Path, capsys) -> None:
    video = _mp4(work / "talk.mp4", audio=True)
    out = work / "out" / "aus.csv"
    assert main(["predict", str(video), "-o", str(out), "--random-weights", "mlp"]) == 0
    assert abs(len(out.read_text().splitlines()) - 1 - 25) <= 2


def test_video_without_audio_track(work: Path, capsys) -> None:
    video = _mp4(work / "mute.mp4", audio=False)
    _fails(["predict", str(video), "-o", str(work / "out" / "aus.csv"), "--random-weights",
            "mlp"], work, [str(video), "video without an audio track"], capsys)


def test_stereo_with_a_silent_channel_keeps_the_level(est: AUEstimator, tmp_path: Path) -> None:
    x = _tone(1.0, 16000)
    sf.write(tmp_path / "mono.wav", x, 16000, subtype="FLOAT")
    sf.write(tmp_path / "left.wav", np.stack([x, np.zeros_like(x)], 1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "both.wav", np.stack([x, x], 1), 16000, subtype="FLOAT")
    mono = est.predict(tmp_path / "mono.wav").values
    np.testing.assert_allclose(est.predict(tmp_path / "left.wav").values, mono, atol=1e-5)
    np.testing.assert_allclose(est.predict(tmp_path / "both.wav").values, mono, atol=1e-5)
    from speechface.speech.longform import predict_long  # long files: read block by block

    np.testing.assert_allclose(predict_long(est, tmp_path / "left.wav", 0.3).values, mono,
                               atol=1e-5)
    # a quiet but live channel still counts: -20 dB on the right is averaged in
    sf.write(tmp_path / "quiet.wav", np.stack([x, 0.1 * x], 1), 16000, subtype="FLOAT")
    from speechface.audio import load_audio

    np.testing.assert_allclose(load_audio(tmp_path / "quiet.wav").numpy(), 0.55 * x, atol=1e-6)


# --------------------------------------------------------------------------- face model
@pytest.mark.parametrize("kind", ["missing-file", "not-a-task-bundle"])
def test_bad_face_landmarker_is_one_clear_error(kind: str, work: Path, monkeypatch,
                                                capsys) -> None:
    pytest.importorskip("mediapipe")
    from speechface.render import face

    bundle = work / "bad.task"
    if kind == "not-a-task-bundle":
        bundle.write_bytes(b"not a model" * 100)
    monkeypatch.setenv("SPEECHFACE_FACE_LANDMARKER", str(bundle))
    monkeypatch.setattr(face, "_TEACHERS", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "falling back to OpenCV" warning either
        _fails(["animate", str(work / "speech.wav"), str(work / "photo.jpg"), "-o",
                str(work / "out" / "t.mp4"), "--quiet"], work, [str(bundle)], capsys)


# --------------------------------------------------------------------------- --debug
def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
        work: Path, monkeypatch, capsys) -> None:
    import speechface.core.results as results

    def boom(*a, **k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(results.Prediction, "to_csv", boom)
    out = str(work / "out" / "aus.csv")
    line = _fails(_predict(work, out), work, ["RuntimeError: kaboom second line", "--debug"],
                  capsys)
    assert "a bug?" in line
    assert main([*_predict(work, out), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("speechface: error:")
    monkeypatch.setenv("SPEECHFACE_DEBUG", "1")
    assert main(_predict(work, out)) == 2
    assert "Traceback" in capsys.readouterr().err


# --------------------------------------------------------------------------- bounded memory
def test_animation_frames_are_rendered_one_batch_at_a_time() -> None:
    """Saving or iterating renders `batch` faces at a time and keeps only the current batch."""
    from speechface.render.face import FaceBox, crop_face
    from speechface.render.result import Animation, FrameComposer

    photo = np.full((96, 80, 3), 90, np.uint8)
    crop = crop_face(photo, FaceBox(20, 20, 60, 70), size=32)
    calls: list[tuple[int, int]] = []

    def render(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return np.full((stop - start, 32, 32, 3), start % 250, np.uint8)

    anim = Animation(FrameComposer(photo, crop, render, 40, 16, 0.1, False), fps=25.0)
    assert calls == [] and len(anim) == 40  # nothing rendered before it is needed
    frames = list(anim.iter_frames())
    assert calls == [(0, 16), (16, 32), (32, 40)]
    assert all(f.shape == (96, 80, 3) for f in frames)
    assert anim._source._faces.shape[0] == 8  # only the last batch is held


def test_big_frames_are_encoded_with_low_memory_settings(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from speechface.render.result import Animation
    from speechface.render.video import BIG_FRAME_PIXELS

    frames = np.zeros((3, 2048, 2050, 3), np.uint8)
    assert 2048 * 2050 > BIG_FRAME_PIXELS
    frames[1, 100:200] = 255
    Animation(frames, audio=_tone(0.12, 16000)).save(tmp_path / "big.mp4")
    with av.open(str(tmp_path / "big.mp4")) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (2050, 2048)
        assert sum(1 for _ in c.decode(v)) == 3
