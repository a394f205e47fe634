"""speechface.render.mouth_sync: the mouth track of the default animation (driver, spread, photo)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import EXAMPLES, need_shared
from speechface.render.mouth_sync import (
    LIP_AUS,
    LIP_SMOOTHING,
    MAX_GAIN,
    MOUTH_TARGET,
    MouthSync,
    apply_jaw_transfer,
    fit_mouth_target,
    jaw_transfer,
    mouth_track,
    normalize_mouth,
    steady_lips,
)
from speechface.spaces import get_space

LIPS = [list(get_space("au17").labels).index(name) for name in LIP_AUS]


def _speechy(n: int = 200, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """(n, 17) AUs whose AU25/AU26 open and close like syllables, other AUs random."""
    rng = np.random.default_rng(seed)
    au = rng.uniform(0, 2, (n, 17)).astype(np.float32)
    jaw = 0.4 + amp * np.sin(np.arange(n) / 2.0) + 0.02 * rng.standard_normal(n)
    au[:, 15] = jaw
    au[:, 14] = jaw + 0.05
    return au


def test_normalize_mouth_gives_the_stated_median_and_spread() -> None:
    au = _speechy()
    tgt = {"AU25": (1.5, 0.4), "AU26": (1.2, 0.3)}   # far from 0: nothing is clipped
    out = normalize_mouth(au, target=tgt)
    assert np.median(out[:, 15]) == pytest.approx(1.2, abs=1e-5)
    assert out[:, 15].std() == pytest.approx(0.3, abs=1e-5)
    assert np.median(out[:, 14]) == pytest.approx(1.5, abs=1e-5)
    assert out[:, 14].std() == pytest.approx(0.4, abs=1e-5)
    assert np.corrcoef(out[:, 15], au[:, 15])[0, 1] > 0.999        # same shape, new scale
    keep = [i for i in range(17) if i not in (14, 15)]
    np.testing.assert_array_equal(out[:, keep], au[:, keep])       # other AUs untouched
    # the packaged target: values below 0 are clipped (a closed mouth), and the median and
    # spread are still the target's
    out = normalize_mouth(au)
    assert out.min() == 0 and (out[:, 15] == 0).mean() > 0.1
    assert np.median(out[:, 15]) == pytest.approx(MOUTH_TARGET["AU26"][0], abs=1e-5)
    assert out[:, 15].std() == pytest.approx(MOUTH_TARGET["AU26"][1], abs=1e-5)
    assert out[:, 14].std() == pytest.approx(MOUTH_TARGET["AU25"][1], abs=1e-5)


def test_normalize_mouth_widens_a_quiet_track_at_most_max_gain_times() -> None:
    au = _speechy(amp=0.01)
    own = au[:, 15].std()
    tgt = {"AU25": (2.0, 0.5), "AU26": (2.0, 0.5)}
    out = normalize_mouth(au, target=tgt)
    assert out[:, 15].std() == pytest.approx(MAX_GAIN * own, rel=1e-4)
    assert out[:, 15].std() < 0.5
    still = np.full((30, 17), 0.7, np.float32)                      # no motion: unchanged
    np.testing.assert_array_equal(normalize_mouth(still), still)
    with pytest.raises(ValueError, match="17"):
        normalize_mouth(np.zeros((5, 16)))
    with pytest.raises(ValueError, match="max_gain"):
        normalize_mouth(au, max_gain=0)


def test_mouth_track_averages_the_z_scores_and_checks_lengths() -> None:
    au = _speechy()
    jaw = 0.1 * au[:, 15] + 3.0                                      # another scale
    t = mouth_track(au, jaw)
    assert abs(t.mean()) < 1e-9
    assert np.corrcoef(t, au[:, 15])[0, 1] > 0.999
    noisy = jaw + np.random.default_rng(1).normal(0, 0.05, len(jaw))
    # averaging a noisy second opinion keeps the track between the two
    r_one = np.corrcoef(mouth_track(au, noisy), au[:, 15])[0, 1]
    assert 0.5 < r_one < 1.0
    with pytest.raises(ValueError, match="frames"):
        mouth_track(au, jaw[:-1])


def test_apply_jaw_transfer_inverts_a_curve_with_a_dead_zone() -> None:
    levels = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    read = np.array([0.0, 0.0, 0.4, 1.4, 1.3, 1.6])   # dead below 0.5, dip at 3 (noise)
    au = np.zeros((4, 17), np.float32)
    au[:, 15] = [0.0, 0.2, 0.9, 2.0]
    au[:, 14] = au[:, 15] + 0.1
    out = apply_jaw_transfer(au, levels, read)
    # 0 (the dead zone's response) at its end; 0.2 at 0.5 + 0.5 * 0.2 / 0.4; 0.9 between 1
    # and 2; above the top: the top level
    np.testing.assert_allclose(out[:, 15], [0.5, 0.75, 1.5, 4.0], atol=1e-6)
    np.testing.assert_allclose(out[:, 14] - out[:, 15], [0.1, 0.1, 0.1, 0.1], atol=1e-6)
    flat = apply_jaw_transfer(au, levels, np.zeros(6))            # no jaw motion: unchanged
    np.testing.assert_array_equal(flat, au)


def test_apply_jaw_transfer_limits_the_gain_of_an_under_read_face() -> None:
    levels = np.array([0.0, 1.0, 2.0, 3.0])
    read = np.array([0.0, 0.1, 0.2, 0.3])            # the widest opening reads as 0.3
    au = np.zeros((3, 17), np.float32)
    au[:, 15] = [0.15, 0.5, 1.0]
    # as read: 0.15 -> 1.5, and everything above 0.3 -> the widest opening
    np.testing.assert_allclose(apply_jaw_transfer(au, levels, read)[:, 15], [1.5, 3.0, 3.0])
    # trusted up to a gain of 2: the curve is scaled to reach 3 / 2 = 1.5 at the top
    out = apply_jaw_transfer(au, levels, read, max_gain=2.0)
    np.testing.assert_allclose(out[:, 15], [0.3, 1.0, 2.0], atol=1e-6)
    # a curve that already reaches 3 / max_gain is used as read
    good = np.array([0.0, 0.8, 1.6, 2.4])
    np.testing.assert_allclose(apply_jaw_transfer(au, levels, good, max_gain=2.0),
                               apply_jaw_transfer(au, levels, good))
    with pytest.raises(ValueError, match="max_gain"):
        apply_jaw_transfer(au, levels, read, max_gain=0.0)


def test_steady_lips_slows_only_the_lip_aus() -> None:
    assert [get_space("au17").labels[i] for i in LIPS] == list(LIP_AUS)
    au = _speechy(300)
    out = steady_lips(au, 10.0)
    others = [i for i in range(17) if i not in LIPS]
    np.testing.assert_array_equal(out[:, others], au[:, others])   # jaw, lips part, eyes, brows
    # the random frame-to-frame motion is gone, the level stays
    assert (out[:, LIPS].std(0) < 0.25 * au[:, LIPS].std(0)).all()
    np.testing.assert_allclose(out[:, LIPS].mean(0), au[:, LIPS].mean(0), atol=0.05)
    # a change that lasts (an expression that comes and stays) survives the default smoothing
    step = np.zeros((400, 17), np.float32)
    step[200:, LIPS[0]] = 2.0                                       # AU10 from 0 to 2 at 8 s
    slow = steady_lips(step)
    assert slow[:100, LIPS[0]].max() < 0.01 and slow[300:, LIPS[0]].min() > 1.99
    np.testing.assert_array_equal(steady_lips(au, 0.0), au)
    with pytest.raises(ValueError, match="17"):
        steady_lips(au[:, :5])
    with pytest.raises(ValueError, match="sigma"):
        steady_lips(au, -1.0)


def test_fit_mouth_target_is_a_median_over_speakers() -> None:
    a = np.zeros((40, 17))
    a[:, 15] = np.arange(40) % 2            # median 0.5, std 0.5
    a[:, 14] = a[:, 15]
    b = a * 3                                # median 1.5, std 1.5
    many_a = [("a", a)] * 9                  # one speaker with many clips counts once
    got = fit_mouth_target(many_a + [("b", b), ("c", a * 2)])
    assert got["AU26"] == (1.0, 1.0)
    with pytest.raises(ValueError, match="frames"):
        fit_mouth_target([("a", a[:3])])


def test_the_packaged_target_comes_from_the_training_speakers() -> None:
    """MOUTH_TARGET is what fit_mouth_target gives on the prepared training clips."""
    import yaml

    from conftest import REPO
    from speechface.data.shards import list_clips, read_clip

    data = REPO / "prepared" / "av_mediapipe"
    if not (data / "index.json").exists() and not any(data.glob("*.npz")):
        pytest.skip(f"prepared talking-face clips not found at {data}")
    val = set(yaml.safe_load((REPO / "configs" / "cause_cnn.yaml").read_text())["val_groups"])

    def clips():
        for rec in list_clips(str(data)):
            if rec.get("speaker", rec["name"]) in val:
                continue
            arrays, _ = read_clip(str(data), rec["name"])
            yield rec.get("speaker", rec["name"]), arrays["targets_au17"][arrays["mask"] > 0]

    assert fit_mouth_target(clips()) == MOUTH_TARGET


def test_jaw_transfer_of_the_mesh_renderer_opens_with_the_condition() -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface.render.face import crop_face, find_face, load_image
    from speechface.render.translators import Translator

    tr = Translator.from_pretrained("mesh_warp.au17-mediapipe")
    photo = load_image(EXAMPLES / "astronaut.jpg")
    crop = crop_face(photo, find_face(photo), margin=float(tr.info.get("crop_margin", 0.35)),
                     shift=float(tr.info.get("crop_shift", 0.0))).image
    levels, read = jaw_transfer(tr, crop, (0.0, 1.0, 3.0, 5.0))
    assert read[-1] > read[0] + 0.5 and read[2] > read[0]
    # a raised chin (AU17) holds the lips closed: the ladder is rendered in the base expression
    raised = np.zeros(17, np.float32)
    raised[11] = 3.0
    _, read_raised = jaw_transfer(tr, crop, (0.0, 1.0, 3.0, 5.0), base=raised)
    assert read_raised[2] < 0.5 * read[2]
    with pytest.raises(ValueError, match="base"):
        jaw_transfer(tr, crop, (0.0, 1.0), base=np.zeros(5))
    with pytest.raises(ValueError, match="increasing"):
        jaw_transfer(tr, crop, (1.0, 0.5))


def test_default_animation_uses_the_mouth_sync_and_it_can_be_turned_off() -> None:
    pytest.importorskip("mediapipe")
    need_shared("models", "face_landmarker.task")
    from speechface import animate
    from speechface.audio import load_audio

    wave = load_audio(EXAMPLES / "speech.wav")[:48000].numpy()
    kw = {"sample_rate": 16000, "progress": False}
    on = animate(wave, EXAMPLES / "astronaut.jpg", **kw)
    info = on.info["mouth_sync"]
    assert info["driver"] == ["cnn.au17-whisper", "cnn.blendshapes52-whisper"]
    assert info["spread"] and len(info["photo_response"]) > 2
    # without the photo step the driving AU26 has the stated median
    no_photo = animate(wave, EXAMPLES / "astronaut.jpg", mouth_sync=MouthSync(photo=False), **kw)
    assert np.median(no_photo.driving[:, 15]) == pytest.approx(MOUTH_TARGET["AU26"][0], abs=1e-4)
    off = animate(wave, EXAMPLES / "astronaut.jpg", mouth_sync=False, **kw)
    assert off.info["mouth_sync"] is None
    assert off.driving[:, 15].std() < no_photo.driving[:, 15].std()   # the model's own, flatter
    assert info["lips"] == LIP_SMOOTHING
    keep = [i for i in range(17) if i not in (14, 15, *LIPS)]
    np.testing.assert_allclose(off.driving[:, keep], no_photo.driving[:, keep], atol=1e-5)
    # the lip shapes and corners: the model's own, slowed to the pace of expression
    np.testing.assert_allclose(no_photo.driving[:, LIPS], steady_lips(off.driving)[:, LIPS],
                               atol=1e-5)
    assert (no_photo.driving[:, LIPS].std(0) < off.driving[:, LIPS].std(0) + 1e-6).all()
    with pytest.raises(ValueError, match="mouth_sync"):
        animate(wave, EXAMPLES / "astronaut.jpg", mouth_sync="yes", **kw)
    with pytest.raises(ValueError, match="MouthSync.lips"):
        animate(wave, EXAMPLES / "astronaut.jpg", mouth_sync=MouthSync(lips=-1.0), **kw)


def test_cli_no_mouth_sync_turns_it_off(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import importlib

    from speechface.cli import main

    A = importlib.import_module("speechface.cli.animate")   # the command's module (it calls animate)

    seen = []

    class Stop(Exception):
        pass

    def fake(*args, **kwargs):
        seen.append(kwargs["mouth_sync"])
        raise Stop

    monkeypatch.setattr(A, "animate", fake)
    base = ["animate", str(EXAMPLES / "speech.wav"), str(EXAMPLES / "astronaut.jpg"), "-o",
            str(tmp_path / "out.mp4"), "--quiet"]
    for extra in ([], ["--no-mouth-sync"]):
        try:
            main(base + extra)      # the CLI reports the stop as an error
        except Stop:
            pass
    assert seen == [True, False]
