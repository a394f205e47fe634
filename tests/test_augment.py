"""Speaker/channel augmentation of prepared shards (speechface prepare augment)."""

from __future__ import annotations

import numpy as np
import pytest

from speechface.core.errors import DataError
from speechface.data.augment import AugmentSettings, augment_audio, augment_shards
from speechface.data.shards import list_clips, read_clip, write_clip


def _clip(root, name, speaker, seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    frames = n // 640
    ramp = np.linspace(0, 5, frames, dtype=np.float32)  # a target that moves with time
    arrays = {"audio": audio, "features": np.zeros((80, frames), np.float32),
              "targets_au17": np.tile(ramp[:, None], (1, 17)),
              "targets_landmarks68": rng.normal(size=(frames, 136)).astype(np.float32),
              "blendshapes": np.zeros((frames, 52), np.float32),
              "mask": np.ones(frames, bool)}
    write_clip(root, name, arrays, {"speaker": speaker})


def test_augment_audio_changes_speed_and_stays_in_range() -> None:
    rng = np.random.default_rng(1)
    x = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    y, speed = augment_audio(x, rng, AugmentSettings(speed=(1.1, 1.1)))
    assert speed == pytest.approx(1.1)
    assert abs(len(y) - 32000 / 1.1) < 60
    assert np.abs(y).max() <= 0.99 + 1e-6 and np.isfinite(y).all()
    with pytest.raises(ValueError, match="speed"):
        AugmentSettings(speed=(0.1, 3.0))
    with pytest.raises(DataError, match="1-D"):
        augment_audio(np.zeros((2, 1000), np.float32), rng)


def test_augment_shards_skips_held_out_groups_and_warps_targets(tmp_path) -> None:
    src, out = tmp_path / "src", tmp_path / "aug"
    _clip(src, "a1", "spk_a")
    _clip(src, "b1", "held_out", seed=1)
    recs = augment_shards(src, out, copies=2, exclude_groups=["held_out"], progress=False,
                          settings=AugmentSettings(speed=(0.9, 0.9)))
    names = sorted(r["name"] for r in recs)
    assert names == ["a1__aug0", "a1__aug1"]
    arrays, meta = read_clip(out, "a1__aug0")
    assert meta["speaker"] == "spk_a" and meta["augmented_from"] == "a1"
    n = len(arrays["audio"]) // 640
    assert n == pytest.approx(50 / 0.9, abs=1)  # 0.9x speed: longer audio, more frames
    for key in ("targets_au17", "targets_landmarks68", "blendshapes", "mask"):
        assert len(arrays[key]) == n
    # the ramp target is read at old frame m * 0.9: it rises more slowly, ends at the same value
    au = arrays["targets_au17"][:, 0]
    old_ramp = np.linspace(0, 5, 50)
    assert au[10] == pytest.approx(np.interp(9.0, np.arange(50), old_ramp), abs=1e-4)
    assert au[-1] == pytest.approx(5.0, abs=0.1)
    # deterministic: a rerun with overwrite writes the same audio
    first = arrays["audio"].copy()
    augment_shards(src, out, copies=2, exclude_groups=["held_out"], progress=False, overwrite=True,
                   settings=AugmentSettings(speed=(0.9, 0.9)))
    np.testing.assert_array_equal(read_clip(out, "a1__aug0")[0]["audio"], first)
    assert len(list_clips(out)) == 2


def test_augment_shards_refuses_bad_arguments(tmp_path) -> None:
    with pytest.raises(DataError, match="no prepared clips"):
        augment_shards(tmp_path, tmp_path / "o", progress=False)
    _clip(tmp_path / "s", "a", "x")
    with pytest.raises(DataError, match="another folder"):
        augment_shards(tmp_path / "s", tmp_path / "s", progress=False)
    with pytest.raises(DataError, match="copies"):
        augment_shards(tmp_path / "s", tmp_path / "o", copies=0, progress=False)
