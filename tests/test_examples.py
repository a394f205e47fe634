"""The example scripts in examples/ run as printed (in fast mode) and write valid outputs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from conftest import EXAMPLES, REPO, SHARED, need_shared

SCRIPTS = REPO / "examples"
SPEECH = EXAMPLES / "speech.wav"
AU_HEADER = ["frame", "timestamp"] + [f"AU{n:02d}_r" for n in
                                      (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
EMOTIONS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def run_example(name: str, *args: str, fast: bool = True, ok: bool = True,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/NAME args`` from the repository root, as the docs print it."""
    env = {**os.environ, "MPLBACKEND": "Agg", "SPEECHFACE_SHARED": str(SHARED)}
    env.pop("SPEECHFACE_EXAMPLES_FAST", None)
    cmd = [sys.executable, f"examples/{name}", *args] + (["--fast"] if fast else [])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def frames_of(path: Path, seconds: float | None = None) -> int:
    """25 fps frames the estimators give for a file: 16 kHz samples // 640."""
    from speechface.audio import load_audio

    n = len(load_audio(path, target_rate=16000))
    if seconds is not None:
        n = min(n, int(round(seconds * 16000)))
    return n // 640


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.asarray(rows[1:], dtype=np.float64)


def check_au_csv(path: Path, n_frames: int) -> np.ndarray:
    header, values = read_csv(path)
    assert header == AU_HEADER
    assert values.shape == (n_frames, len(AU_HEADER))
    np.testing.assert_array_equal(values[:, 0], np.arange(1, n_frames + 1))
    np.testing.assert_allclose(values[:, 1], np.arange(n_frames) / 25.0, atol=1e-3)
    assert np.isfinite(values).all() and values[:, 2:].min() >= 0 and values[:, 2:].max() <= 5
    return values


def packaged(kind: str, space: str | None = None) -> bool:
    from speechface.pretrained import list_pretrained

    return bool(list_pretrained(kind, space))


def test_every_example_is_documented():
    scripts = sorted(p.name for p in SCRIPTS.glob("*.py"))
    assert scripts == sorted(["animate_photo.py", "custom_estimator.py", "emotion_track.py",
                              "export_csv.py", "predict_and_plot.py", "train_estimator.py",
                              "livelink_export.py", "threejs_curves.py", "blender_keys.py"])
    readme = (SCRIPTS / "README.md").read_text()
    for name in scripts:
        doc = (SCRIPTS / name).read_text().split('"""')[1]
        assert f"python examples/{name}" in doc, f"{name}: docstring lacks its command"
        assert "--fast" in doc and f"python examples/{name}" in readme


def test_predict_and_plot(tmp_path):
    out = tmp_path / "plots" / "aus.png"
    proc = run_example("predict_and_plot.py", "-o", str(out), "--dpi", "40")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (480, 260)  # 12 x 6.5 inches at 40 dpi
        assert np.asarray(im.convert("L")).std() > 10  # not a blank image
    assert f"{frames_of(SPEECH)} frames x 17 AUs" in proc.stdout


def test_export_csv_batch(tmp_path):
    # a second file at 44.1 kHz stereo and a third at 8 kHz: predict_batch resamples each
    sr = 44100
    t = np.arange(int(2.5 * sr)) / sr
    tone = (0.1 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)))
    stereo = tmp_path / "in" / "stereo44k.wav"
    stereo.parent.mkdir()
    sf.write(stereo, np.stack([tone, 0.5 * tone], 1).astype(np.float32), sr)
    low = tmp_path / "in" / "low8k.flac"
    wave, rate = sf.read(SPEECH, dtype="float32")
    sf.write(low, wave[:: rate // 8000][:8000 * 3], 8000)
    inputs = [SPEECH, stereo, low]
    out = tmp_path / "csv"
    run_example("export_csv.py", *map(str, inputs), "-o", str(out))
    for path in inputs:
        n = frames_of(path)
        values = check_au_csv(out / f"{path.stem}.csv", n)
        meta = json.loads((out / f"{path.stem}.json").read_text())
        assert meta["frames"] == n and meta["fps"] == 25.0
        assert meta["columns"] == AU_HEADER and meta["model"]["space"] == "au17"
        assert meta["mean"]["AU26"] == pytest.approx(values[:, AU_HEADER.index("AU26_r")].mean(),
                                                     abs=1e-3)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{p.stem}{ext}" for p in inputs for ext in (".csv", ".json"))


def test_emotion_track(tmp_path):
    out = tmp_path / "emo.csv"
    proc = run_example("emotion_track.py", "-o", str(out))
    header, values = read_csv(out)
    assert header == ["frame", "timestamp", *EMOTIONS]
    assert len(values) == frames_of(SPEECH)
    np.testing.assert_allclose(values[:, 2:].sum(1), 1.0, atol=5e-3)  # distributions
    with Image.open(out.with_suffix(".png")) as im:
        assert im.format == "PNG" and im.size == (550, 225)  # 11 x 4.5 inches at 50 dpi
    assert "top emotion:" in proc.stdout
    if not packaged("estimator", "emotion8"):
        assert "RANDOM WEIGHTS" in proc.stdout and "RANDOM WEIGHTS" in proc.stderr


def test_emotion_track_without_model_fails_unless_fast(tmp_path):
    if packaged("estimator", "emotion8"):
        pytest.skip("an emotion model is packaged: the example runs for real")
    proc = run_example("emotion_track.py", "-o", str(tmp_path / "e.csv"), fast=False, ok=False)
    assert proc.returncode == 2
    assert "no packaged default model for emotion8" in proc.stderr
    assert not (tmp_path / "e.csv").exists()


@pytest.mark.slow
def test_animate_photo(tmp_path):
    av = pytest.importorskip("av")
    out = tmp_path / "talking.mp4"
    proc = run_example("animate_photo.py", "-o", str(out))
    n = frames_of(SPEECH, seconds=2.0)  # --fast animates the first 2 s
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert container.streams.audio, "no audio stream"
        assert (video.width, video.height) == (512, 512)
        assert sum(1 for _ in container.decode(video=0)) == n
    assert f"{n} frames 512x512" in proc.stdout
    if not packaged("translator"):
        assert "RANDOM WEIGHTS" in proc.stderr and "RANDOM WEIGHTS" in proc.stdout


@pytest.mark.slow
def test_animate_photo_without_translator_fails_clearly(tmp_path):
    if packaged("translator"):
        pytest.skip("a translator is packaged: the example runs for real")
    out = tmp_path / "talking.mp4"
    proc = run_example("animate_photo.py", "-o", str(out), fast=False, ok=False)
    assert proc.returncode == 1
    assert "no packaged translator" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_custom_estimator(tmp_path):
    out = tmp_path / "custom"
    proc = run_example("custom_estimator.py", "-o", str(out))
    check_au_csv(out / "speech_aus.csv", frames_of(SPEECH))
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["architecture"] == "tcn_tiny" and cfg["pretrained"] is True
    assert cfg["model_args"]["dilations"] == [1, 2, 4]
    assert (out / "model" / "model.safetensors").stat().st_size > 0
    assert "TinyTCN" in proc.stdout


@pytest.mark.slow
@pytest.mark.shared
def test_train_estimator(tmp_path):
    need_shared("data", "av_clips", "grid_s1")
    out = tmp_path / "cnn"
    proc = run_example("train_estimator.py", "-o", str(out))
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["architecture"] == "cnn" and cfg["space"] == "au17" and cfg["pretrained"] is True
    assert set(cfg["info"]["val_groups"]).isdisjoint(cfg["info"]["train_groups"])
    assert (out / "model" / "model.safetensors").stat().st_size > 0
    results = json.loads((out / "eval" / "results.json").read_text())["results"]
    assert set(results["frame"]) == {"Zero", "Mean", "CNN"} and results["n_clips"] == 2
    with open(out / "run" / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 2  # 2 epochs
    assert len(list((out / "prepared").glob("*.npz"))) == 4
    assert "reloaded AUEstimator" in proc.stdout


# --------------------------------------------------------------------------- avatar examples
LIVE_LINK_HEAD = ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]


def test_livelink_export(tmp_path):
    out = tmp_path / "take.csv"
    proc = run_example("livelink_export.py", "-o", str(out), "--emotion", "happiness",
                       "--intensity", "0.5")
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == LIVE_LINK_HEAD and rows[0][-1] == "RightEyeRoll" and len(rows[0]) == 63
    n25 = frames_of(SPEECH)
    assert len(rows) - 1 == int((n25 - 1) / 25 * 60 + 1e-9) + 1  # resampled to 60 fps
    assert rows[1][0] == "00:00:00:00.000" and rows[61][0] == "00:00:01:00.000"
    smile = np.array([float(r[rows[0].index("MouthSmileLeft")]) for r in rows[1:]])
    assert smile.min() >= 0.3 - 1e-4  # happiness at 0.5: the prototype's 0.6 x 0.5 on top
    assert "Live Link Face CSV" in proc.stdout


def test_threejs_curves(tmp_path):
    out = tmp_path / "take.json"
    run_example("threejs_curves.py", "-o", str(out), "--fps", "30")
    doc = json.loads(out.read_text())
    assert doc["fps"] == 30.0 and len(doc["names"]) == 52 and doc["names"][24] == "jawOpen"
    assert all(len(v) == doc["frames"] for v in doc["curves"].values())
    clip = json.loads(out.with_suffix(".clip.json").read_text())
    assert len(clip["tracks"]) == 52
    assert clip["tracks"][24]["name"] == ".morphTargetInfluences[jawOpen]"


def test_blender_keys(tmp_path):
    import shutil

    out = tmp_path / "take.py"
    args = ["-o", str(out)] + (["--run-blender"] if shutil.which("blender") else [])
    proc = run_example("blender_keys.py", *args)
    import ast

    ast.parse(out.read_text())
    assert "NAMES = " in out.read_text() and "def main(argv)" in out.read_text()
    if shutil.which("blender"):
        assert f"keyed 52 shape keys of speechface_demo_face over {frames_of(SPEECH)} frames" \
            in proc.stdout
