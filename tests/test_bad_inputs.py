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
from speechface.data.openface import read_openface_csv, to_frame_grid
from speechface.errors import (
    AudioError,
    DataError,
    ImageError,
    ModelError,
    NoFaceError,
    SpeechfaceError,
)
from speechface.face import detect_faces, find_face, load_image, select_face
from speechface.translators import Translator

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
