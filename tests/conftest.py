"""Shared fixtures: where the real data lives, small example inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
RAVDESS_CLIP = SHARED / "data" / "ravdess" / "Actor_01" / "03-01-03-02-02-01-01.flac"
EXAMPLES = REPO / "examples" / "data"


def need_shared(*parts: str) -> Path:
    """Path inside the shared data folder, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SPEECHFACE_SHARED)")
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    tiny tensors are fastest so, and a busy host cannot stall a thread pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """The example speech (``examples/data/speech.wav``: 8.8 s of real speech at 16 kHz), float32."""
    import soundfile as sf

    x, sr = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    assert sr == 16000
    return x


@pytest.fixture
def ravdess_clip() -> Path:
    return need_shared("data", "ravdess", "Actor_01", "03-01-03-02-02-01-01.flac")


@pytest.fixture
def speech_wave() -> tuple[np.ndarray, int]:
    """2 s of a voiced, speech-like synthetic signal at 16 kHz (harmonics with a moving pitch)."""
    sr = 16000
    t = np.arange(2 * sr) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * wave).astype(np.float32), sr
