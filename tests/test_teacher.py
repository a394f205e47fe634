"""speechface.teachers.mediapipe: model lookup, the AU proxy table, landmarks68, real faces."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from speechface.core.errors import ModelError
from speechface.spaces import AU17
from speechface.teachers import (
    AU_FROM_BLENDSHAPES,
    BLENDSHAPE_NAMES,
    MP_TO_IBUG68,
    PROXY_NAME,
    blendshape_au_matrix,
    blendshapes_to_au17,
    landmarks68_from_478,
    resolve_face_landmarker,
)
from speechface.teachers import mediapipe as mpt

SHARED = Path(os.environ.get("SPEECHFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not found at {p} (set SPEECHFACE_SHARED)")
    return p


@pytest.fixture(scope="module")
def model_path() -> Path:
    pytest.importorskip("mediapipe")
    return shared("models", "face_landmarker.task")


# --------------------------------------------------------------------------- model lookup
def test_resolve_order(tmp_path, monkeypatch):
    for var in ("SPEECHFACE_FACE_LANDMARKER", "SPEECHFACE_SHARED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared beside the working directory
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    explicit, env, sh = tmp_path / "a.task", tmp_path / "b.task", tmp_path / "sh"
    explicit.write_bytes(b"x")
    env.write_bytes(b"x")
    (sh / "models").mkdir(parents=True)
    (sh / "models" / "face_landmarker.task").write_bytes(b"x")
    cached = tmp_path / "cache" / "speechface" / "face_landmarker.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_face_landmarker() == cached
    monkeypatch.setenv("SPEECHFACE_SHARED", str(sh))
    assert resolve_face_landmarker() == sh / "models" / "face_landmarker.task"
    monkeypatch.setenv("SPEECHFACE_FACE_LANDMARKER", str(env))
    assert resolve_face_landmarker() == env
    assert resolve_face_landmarker(explicit) == explicit
    with pytest.raises(ModelError, match="nope.task"):
        resolve_face_landmarker(tmp_path / "nope.task")


def test_offline_download_fails_cleanly(tmp_path, monkeypatch):
    for var in ("SPEECHFACE_FACE_LANDMARKER", "SPEECHFACE_SHARED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(mpt.urllib.request, "urlopen", offline)
    with pytest.raises(ModelError, match="cannot download"):
        resolve_face_landmarker()
    assert list((tmp_path / "speechface").iterdir()) == []  # no partial file left behind
    with pytest.raises(ModelError, match="download disabled"):
        resolve_face_landmarker(download=False)


# --------------------------------------------------------------------------- AU proxy
def test_proxy_table_covers_au17():
    assert PROXY_NAME == "mediapipe_blendshape_proxy_v1"
    assert list(AU_FROM_BLENDSHAPES) == list(AU17.labels)
    assert len(BLENDSHAPE_NAMES) == 52 and len(set(BLENDSHAPE_NAMES)) == 52
    for rows in AU_FROM_BLENDSHAPES.values():
        assert all(name in BLENDSHAPE_NAMES for name, _ in rows)
    assert blendshape_au_matrix().shape == (52, 17)


def test_proxy_values():
    bs = np.zeros((2, 52), np.float32)
    j = BLENDSHAPE_NAMES.index
    bs[0, j("jawOpen")] = 0.4
    bs[0, j("mouthSmileLeft")] = bs[0, j("mouthSmileRight")] = 0.5
    bs[1, j("jawOpen")] = 0.6
    bs[1, j("mouthClose")] = 0.6  # jaw open but lips held closed: no AU25
    bs[1, j("browInnerUp")] = 1.0
    au = blendshapes_to_au17(bs)
    i = AU17.index
    assert au.shape == (2, 17) and au.dtype == np.float32
    assert au[0, i("AU26")] == pytest.approx(2.0) and au[0, i("AU25")] == pytest.approx(2.0)
    assert au[0, i("AU12")] == pytest.approx(2.5)
    assert au[1, i("AU25")] == pytest.approx(0.0) and au[1, i("AU01")] == pytest.approx(5.0)
    full = blendshapes_to_au17(np.ones(52))
    assert full.min() >= 0 and full.max() <= 5
    t = blendshapes_to_au17(torch.from_numpy(bs))
    assert isinstance(t, torch.Tensor) and torch.allclose(t, torch.from_numpy(au))


# --------------------------------------------------------------------------- landmarks
def test_ibug_index_list():
    assert len(MP_TO_IBUG68) == 68 and len(set(MP_TO_IBUG68)) == 68
    assert all(0 <= k < 468 for k in MP_TO_IBUG68)
    assert MP_TO_IBUG68[8] == 152 and MP_TO_IBUG68[30] == 4  # chin tip, nose tip


def test_landmarks68_boxes():
    rng = np.random.default_rng(0)
    lm = rng.uniform(0.2, 0.8, (3, 478, 3))
    ext = landmarks68_from_478(lm)
    assert ext.shape == (3, 136) and ext.dtype == np.float32
    assert ext.min() == pytest.approx(0.0) and ext.max() == pytest.approx(1.0)
    whole = landmarks68_from_478(lm, box=(0.0, 0.0, 1.0, 1.0))
    np.testing.assert_allclose(whole[:, :68], lm[:, list(MP_TO_IBUG68), 0], rtol=1e-6)
    np.testing.assert_allclose(whole[:, 68:], lm[:, list(MP_TO_IBUG68), 1], rtol=1e-6)
    # a clip whose chin drops while the rest stays: the stable box keeps the motion
    clip = np.repeat(lm[:1], 5, axis=0)
    clip[:, 152, 1] = 0.8 + 0.02 * np.arange(5)
    stable = landmarks68_from_478(clip, box="stable")
    per_frame = landmarks68_from_478(clip)
    assert np.all(np.diff(stable[:, 68 + 8]) > 0)  # chin y moves down in stable coordinates
    assert np.allclose(per_frame[:, 68 + 8], 1.0)  # ... but is always 1 in its own extent
    with pytest.raises(ValueError):
        landmarks68_from_478(np.zeros((10, 3)))


# --------------------------------------------------------------------------- real faces
@pytest.mark.shared
def test_teacher_on_real_clip(model_path):
    from speechface.render.video import read_video
    from speechface.teachers import MediaPipeTeacher

    grid = sorted(shared("data", "av_clips", "grid_s1").glob("*.mp4"))[0]
    clip = read_video(grid, max_frames=25, audio=False)
    with MediaPipeTeacher(model_path) as teacher:
        track = teacher.observe_video(clip)
        again = teacher.observe_video(clip)  # a second video starts a fresh graph
    assert len(track) == 25 and track.found.mean() >= 0.9
    assert track.blendshapes.shape == (25, 52) and track.landmarks478.shape == (25, 478, 3)
    np.testing.assert_allclose(again.blendshapes, track.blendshapes, atol=1e-4)
    au = track.au17
    assert au.shape == (25, 17) and au.min() >= 0 and au.max() <= 5 and au.max() > 0
    lm = track.landmarks68()[track.found]
    assert lm.shape[1] == 136 and lm.min() > -0.1 and lm.max() < 1.1
    b = track.boxes[track.found]
    assert np.all((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])) and b[:, 2].max() <= 360 + 5
    # the mouth opens and closes while speaking: jawOpen varies
    assert np.ptp(track.blendshapes[:, BLENDSHAPE_NAMES.index("jawOpen")]) > 0.05


@pytest.mark.shared
def test_image_mode_on_strided_frames_and_photos(model_path):
    import av
    from PIL import Image

    from speechface.teachers import MediaPipeTeacher

    grid = sorted(shared("data", "av_clips", "grid_s1").glob("*.mp4"))[0]
    with av.open(str(grid)) as c:
        raw = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert not raw.flags["C_CONTIGUOUS"]  # PyAV pads rows: exactly the case that needs a copy
    photo = sorted(shared("data", "faces").glob("*.jpg"))[0]
    with MediaPipeTeacher(model_path, running_mode="image") as teacher:
        obs = teacher.observe(raw)
        assert obs.found and obs.blendshapes.shape == (52,) and obs.landmarks.shape == (478, 3)
        assert 0 <= obs.au17.min() and obs.au17.max() <= 5
        assert teacher.observe(np.asarray(Image.open(photo).convert("RGB"))).found
        assert not teacher.observe(np.zeros((128, 128, 3), np.uint8)).found
