"""The ``speechface`` command line: predict on real speech, models, one-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from speechface.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speechface.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


def test_predict_real_ravdess_clip_writes_25fps_openface_csv(ravdess_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "aus.csv"
    proc = run_cli("predict", str(ravdess_clip), "-o", str(out), "--random-weights", "cnn")
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM WEIGHTS" in proc.stderr and "cnn.au17" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[:4] == ["frame", "timestamp", "AU01_r", "AU02_r"]
    assert len(rows[0]) == 2 + 17
    # the clip is 4.0 s at 16 kHz -> 100 frames at 25 fps
    import soundfile as sf

    n = sf.info(str(ravdess_clip)).frames // 640
    assert len(rows) == n
    assert float(rows[1]["timestamp"]) == pytest.approx(0.04)
    assert all(0 <= float(rows[5][c]) <= 5 for c in rows[5] if c.endswith("_r"))


def test_models_lists_every_registry(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for word in ("estimators:", "cnn", "dcnn", "lstm_mfcc", "features:", "logmel", "mfcc",
                 "spaces:", "au17", "emotion8", "landmarks68"):
        assert word in out


@pytest.mark.parametrize("args,needle", [
    (["predict", "missing.wav", "-o", "x.csv", "--random-weights", "cnn"], "missing.wav"),
    (["predict", "README.md", "-o", "x.csv", "--random-weights", "cnn"], "README.md"),
    (["predict", "examples/data/speech.wav", "-o", "x.csv", "--model", "nope"], "no model called 'nope'"),
    (["predict", "examples/data/speech.wav", "-o", "x.csv", "--random-weights", "zzz"], "unknown estimator 'zzz'"),
])
def test_bad_input_gives_one_line_error_and_no_output(args: list[str], needle: str, tmp_path: Path) -> None:
    args = [str(REPO / a) if a.endswith((".wav", ".md")) else a for a in args]
    args[args.index("-o") + 1] = str(tmp_path / "x.csv")
    proc = run_cli(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("speechface: error:") and needle in lines[0]
    assert not (tmp_path / "x.csv").exists()


def test_predict_with_the_packaged_default(ravdess_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "aus.csv"
    proc = run_cli("predict", str(ravdess_clip), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "cnn.au17-whisper-openface [pretrained]" in proc.stderr
    assert out.read_text().startswith("frame,timestamp,AU01_r")
