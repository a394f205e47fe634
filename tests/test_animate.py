"""speechface.animate: speech + photo -> frames, mp4 with the speech, gif/webp, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, REPO
from speechface import AUEstimator, EmotionEstimator, spaces
from speechface.audio import load_audio, save_audio
from speechface.cli import main
from speechface.core.errors import ModelError, NoFaceError, SpeechfaceError
from speechface.render.animate import animate
from speechface.render.face import crop_face, load_image
from speechface.render.result import Animation
from speechface.render.translators import Translator
from speechface.spaces.transforms import scale_conditions, smooth_conditions
from test_face import landmarker_model

av = pytest.importorskip("av")

ASTRONAUT = EXAMPLES / "astronaut.jpg"
SPEECH = EXAMPLES / "speech.wav"
N_FRAMES = 50  # 2.0 s at 25 fps


@pytest.fixture(scope="module", autouse=True)
def _face_model() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHFACE_FACE_LANDMARKER", str(landmarker_model()))
        yield


@pytest.fixture(scope="module")
def speech2s() -> np.ndarray:
    return load_audio(SPEECH)[:32000].numpy()  # 2.0 s at 16 kHz


@pytest.fixture(scope="module")
def models() -> tuple[AUEstimator, Translator]:
    import torch

    torch.manual_seed(0)
    est = AUEstimator.create("cnn")
    tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
    return est, tr


@pytest.fixture(scope="module")
def anim(speech2s, models) -> Animation:
    est, tr = models
    return animate(speech2s, ASTRONAUT, est, tr, sample_rate=16000, progress=False)


def probe(path: Path) -> dict:
    """Frame count, size, codecs and audio duration of a video file, read with PyAV."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"vcodec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
                "size": (v.codec_context.width, v.codec_context.height),
                "frames": sum(1 for _ in c.decode(video=0))}
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        info["acodec"] = a.codec_context.name
        info["audio_s"] = float(a.duration * a.time_base)
        info["rate"] = a.codec_context.sample_rate
    return info


# --------------------------------------------------------------------------- animate
def test_animate_gives_one_frame_per_25fps_frame_and_changes_only_the_face(anim, speech2s) -> None:
    photo = load_image(ASTRONAUT)
    assert len(anim) == N_FRAMES and anim.fps == 25.0
    frames = anim.frames
    assert frames.shape == (N_FRAMES, 512, 512, 3) and frames.dtype == np.uint8
    assert anim.audio.dtype == np.float32 and anim.audio.shape == speech2s.shape
    assert anim.conditions.values.shape == (N_FRAMES, 17) and anim.conditions.space == "au17"
    assert anim.driving.shape == (N_FRAMES, 17)
    assert anim.n_faces == 1 and anim.face_index == 0
    assert anim.info["translator"] == "ganimation.au17" and anim.info["margin"] == 0.35
    crop = crop_face(photo, anim.face)
    outside = np.ones((512, 512), bool)
    outside[crop.visible()] = False
    assert (frames[:, outside] == photo[outside]).all()  # bit-identical outside the face crop
    assert (frames != photo).any(axis=(1, 2, 3)).all()  # the face changes in every frame
    assert (frames[1:] != frames[:-1]).any()  # ... and over time


def test_strength_zero_is_a_still_neutral_face_and_smoothing_is_centred(speech2s, models) -> None:
    est, tr = models
    still = animate(speech2s[:8000], ASTRONAUT, est, tr, sample_rate=16000, strength=0.0,
                    progress=False)
    assert (still.driving == 0).all()
    assert (still.frames == still.frames[0]).all()
    x = np.zeros((41, 2), np.float32)
    x[20] = 1.0
    s = smooth_conditions(x, 2.0)
    assert s[:, 0].argmax() == 20 and s[19, 0] == pytest.approx(s[21, 0])  # centred: no lag
    assert s.sum(0) == pytest.approx([1.0, 1.0], abs=1e-5) and s[20, 0] < 0.25
    assert (smooth_conditions(np.ones((5, 3)), 4.0) == pytest.approx(1.0))  # edges: no decay
    probs = np.random.default_rng(0).dirichlet(np.ones(8), size=30)
    assert smooth_conditions(probs, 3.0).sum(1) == pytest.approx(np.ones(30), abs=1e-5)
    assert (smooth_conditions(x, 0) == x).all()
    emo = scale_conditions(np.array([[0.5, 0.5, 0, 0, 0, 0, 0, 0]]), "emotion8", 2.0)
    assert emo.sum() == pytest.approx(1.0) and emo[0, 0] == 0 and emo[0, 1] == 1


def test_side_by_side_and_odd_sizes_make_an_even_mp4(speech2s, models, tmp_path: Path) -> None:
    est, tr = models
    odd = load_image(ASTRONAUT)[:401, 20:321]  # 301 x 401
    a = animate(speech2s[:8000], odd, est, tr, sample_rate=16000, side_by_side=True,
                progress=False)
    assert a.size == (602, 401) and len(a) == 12
    assert (a.frame(0)[:, :301] == odd).all()
    out = a.save(tmp_path / "sbs.mp4")
    info = probe(out)
    assert info["size"] == (602, 402) and info["frames"] == 12


def test_mp4_has_h264_frames_and_the_speech_as_aac(anim, tmp_path: Path) -> None:
    out = anim.save(tmp_path / "talk.mp4")
    info = probe(out)
    assert info["vcodec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (512, 512) and info["frames"] == N_FRAMES
    assert info["acodec"] == "aac" and info["rate"] == 16000
    assert info["audio_s"] == pytest.approx(2.0, abs=0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["talk.mp4"]  # no temporary left behind


def test_gif_and_webp(anim, tmp_path: Path) -> None:
    gif = anim.save(tmp_path / "talk.gif")
    with Image.open(gif) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
            assert im.size == (512, 512)
    assert total == N_FRAMES * 40  # identical consecutive frames may be merged, time is kept
    # (lossy WebP merges frames that differ by a grey level, as the random model's do)
    ramp = np.stack([np.full((48, 64, 3), 20 * i, np.uint8) for i in range(10)])
    webp = Animation(ramp).save(tmp_path / "ramp.webp")
    with Image.open(webp) as im:
        assert im.n_frames == 10 and im.size == (64, 48)
        im.seek(5)
        assert abs(int(np.asarray(im.convert("RGB"))[10, 10, 0]) - 100) < 6
        assert im.info["duration"] == 40


def test_failed_or_unsupported_saves_leave_no_file(anim, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unsupported output type '.avi'"):
        anim.save(tmp_path / "x.avi")
    small = Animation(anim.frames[:5], fps=25.0, audio=anim.audio[:8000])

    def broken():
        yield small.frame(0)
        raise RuntimeError("disk full")

    monkeypatch.setattr(small, "iter_frames", broken)
    for name in ("x.mp4", "x.gif"):
        with pytest.raises(RuntimeError, match="disk full"):
            small.save(tmp_path / name)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(SpeechfaceError, match=r"speechface\[video\]"):
        Animation(anim.frames[:2]).save(tmp_path / "y.mp4")
    assert list(tmp_path.iterdir()) == []


def test_emotion_estimator_drives_an_au_translator_when_the_conversion_exists(speech2s, models
                                                                            ) -> None:
    _, tr = models
    emo = EmotionEstimator.create("cnn")
    if not hasattr(spaces, "emotion_to_au"):
        with pytest.raises(ModelError, match="no emotion8 -> au17 conversion"):
            animate(speech2s[:8000], ASTRONAUT, emo, tr, sample_rate=16000, progress=False)
        return
    a = animate(speech2s[:8000], ASTRONAUT, emo, tr, sample_rate=16000, progress=False)
    assert a.conditions.space == "emotion8" and a.driving.shape == (len(a), 17)


def test_no_face_and_bad_face_index(speech2s, models, tmp_path: Path) -> None:
    est, tr = models
    grey = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(grey)
    with pytest.raises(NoFaceError, match="wall.png"):
        animate(speech2s, grey, est, tr, sample_rate=16000, progress=False)
    with pytest.raises(NoFaceError, match="face_index=3 but only 1 face was found in .*astronaut.jpg"):
        animate(speech2s, ASTRONAUT, est, tr, sample_rate=16000, face_index=3, progress=False)


# --------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def model_dirs(models, tmp_path_factory) -> tuple[Path, Path]:
    est, tr = models
    root = tmp_path_factory.mktemp("models")
    return est.save_pretrained(root / "est"), tr.save_pretrained(root / "tr")


def test_cli_animate_end_to_end(model_dirs, speech2s, tmp_path: Path, capsys) -> None:
    est_dir, tr_dir = model_dirs
    wav = save_audio(tmp_path / "speech2s.wav", speech2s, 16000)
    out = tmp_path / "out.mp4"
    code = main(["animate", str(wav), str(ASTRONAUT), "-o", str(out), "--model", str(est_dir),
                 "--translator", str(tr_dir), "--smoothing", "1.5", "--strength", "1.2",
                 "--side-by-side", "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert f"wrote {out}: {N_FRAMES} frames 1024x512 at 25 fps (2.00 s)" in err
    assert "estimator cnn.au17 [RANDOM WEIGHTS], translator ganimation.au17 [RANDOM" in err
    info = probe(out)
    assert info["frames"] == N_FRAMES and info["size"] == (1024, 512)
    assert info["audio_s"] == pytest.approx(2.0, abs=0.1)


def test_cli_missing_image_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.run([sys.executable, "-m", "speechface.cli", "animate", str(SPEECH),
                           str(tmp_path / "nobody.jpg"), "-o", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("speechface: error:"), proc.stderr
    assert "nobody.jpg" in lines[0] and "not found" in lines[0]
    assert not out.exists()


def test_expand_dynamics_widens_movement_around_the_mean() -> None:
    from speechface.spaces.transforms import expand_dynamics

    v = np.array([[1.0] * 17, [2.0] * 17, [3.0] * 17], dtype=np.float32)
    out = expand_dynamics(v, "au17", 2.0)
    np.testing.assert_allclose(out.mean(0), v.mean(0))
    np.testing.assert_allclose(out[:, 0], [0.0, 2.0, 4.0])
    assert expand_dynamics(v * 2, "au17", 10.0).max() == 5.0  # clipped to the AU range
    emo = np.array([[0.7, 0.3] + [0.0] * 6, [0.3, 0.7] + [0.0] * 6], dtype=np.float32)
    np.testing.assert_allclose(expand_dynamics(emo, "emotion8", 2.0).sum(1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="expressiveness"):
        expand_dynamics(v, "au17", -1.0)


def test_fast_path_stays_close_to_fp32(anim, speech2s, models) -> None:
    from speechface.render.fastpath import FastOptions

    est, tr = models
    fast = animate(speech2s, ASTRONAUT, est, tr, sample_rate=16000, progress=False,
                   fast=FastOptions(bf16=True, batch_size=16))
    assert fast.num_frames == anim.num_frames
    for i in (0, 25, 49):
        diff = np.abs(fast.frame(i).astype(int) - anim.frame(i).astype(int))
        assert diff.max() <= 12 and diff.mean() < 1.0


def test_hold_expression_adds_the_utterance_vector_except_the_mouth() -> None:
    from speechface.core.errors import ModelError
    from speechface.pretrained import DEFAULT_MODELS
    from speechface.render.animate import hold_utterance_expression
    from speechface.speech import SpeechEstimator

    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    cond = np.zeros((50, 17), np.float32)
    cond[:, 15] = np.linspace(0, 2, 50)  # AU26 moves with the speech
    model = SpeechEstimator.from_pretrained(DEFAULT_MODELS["utterance_au17"])
    vec = model.predict(wave, sample_rate=16000).values.reshape(-1, 17).mean(0)
    held = hold_utterance_expression(cond, wave, True)
    np.testing.assert_allclose(held[:, 15], cond[:, 15])             # the mouth keeps the speech
    np.testing.assert_allclose(held[:, 14], cond[:, 14])             # AU25 too
    np.testing.assert_allclose(held[:, 0], np.clip(vec[0], 0, 5), atol=1e-6)  # held all along
    assert np.all(held[0, :14] == held[-1, :14])
    with pytest.raises(ModelError, match="utterance-level"):
        hold_utterance_expression(cond, wave, SpeechEstimator.create("cnn"))
    with pytest.raises(ModelError, match="au17"):
        hold_utterance_expression(cond, wave, True, space="emotion8")
