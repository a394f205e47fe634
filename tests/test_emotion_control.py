"""Emotion control at inference: FACS prototypes blended into AU and ARKit tracks, and animate."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from conftest import EXAMPLES
from speechface import AUEstimator, get_space
from speechface.core.results import Prediction
from speechface.spaces.blendshapes import ARKIT52_NAMES, arkit52_to_au17
from speechface.spaces.emotion_control import (
    ARTICULATION,
    apply_emotion,
    emotion_prototype,
    emotion_weights,
)
from speechface.spaces.space import EMOTION_AU_PROTOTYPES, EMOTIONS

AU = list(get_space("au17").labels)


def speech_au_track(n: int = 100, seed: int = 0) -> np.ndarray:
    """A speech-like AU track: jaw and lips moving at syllable rate, some brow and smile motion."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 25
    x = np.zeros((n, 17), np.float32)
    x[:, AU.index("AU26")] = 2.0 + 1.8 * np.sin(2 * np.pi * 4 * t)
    x[:, AU.index("AU25")] = x[:, AU.index("AU26")] + 0.3
    x[:, AU.index("AU01")] = 0.5 + 0.3 * rng.random(n)
    x[:, AU.index("AU12")] = 0.4 + 0.2 * np.sin(2 * np.pi * 0.5 * t)
    return x


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_au17_prototypes_follow_emfacs_and_keep_articulation(emotion):
    s = speech_au_track()
    out = apply_emotion(s, emotion, 1.0, space="au17")
    proto = EMOTION_AU_PROTOTYPES[emotion]
    for au in AU:
        if au in ARTICULATION["au17"]:
            np.testing.assert_array_equal(out[:, AU.index(au)], s[:, AU.index(au)])
        else:
            expect = np.clip(s[:, AU.index(au)] + proto.get(au, 0.0), 0, 5)
            np.testing.assert_allclose(out[:, AU.index(au)], expect, atol=1e-6)
    # the speech-driven movement rides on top: frame-to-frame changes are kept where not clipped
    for au in proto:
        if au not in ARTICULATION["au17"]:
            j = AU.index(au)
            ok = (s[:, j] + proto[au] < 5).all()
            if ok:
                np.testing.assert_allclose(np.diff(out[:, j]), np.diff(s[:, j]), atol=1e-5)


def test_intensity_zero_neutral_and_none_leave_the_track_unchanged():
    s = speech_au_track()
    for out in (apply_emotion(s, "anger", 0.0), apply_emotion(s, "neutral", 1.0),
                apply_emotion(s, None), apply_emotion(s, "calm", 0.7)):
        np.testing.assert_array_equal(out, s)


def test_intensity_scales_and_can_be_a_curve():
    s = np.zeros((50, 17), np.float32)
    half = apply_emotion(s, "happiness", 0.5)
    assert half[0, AU.index("AU12")] == pytest.approx(1.5) and half[0, AU.index("AU06")] == 1.5
    ramp = np.linspace(0, 1, 50)
    out = apply_emotion(s, "happy", ramp)
    np.testing.assert_allclose(out[:, AU.index("AU12")], 3.0 * ramp, atol=1e-6)
    strong = apply_emotion(np.full((2, 17), 4.0, np.float32), "surprise", 2.0)
    assert strong.max() <= 5.0  # clipped to the range


def test_arkit_blend_keeps_the_mouth_and_puts_contempt_on_one_side():
    n = 60
    s = np.zeros((n, 52), np.float32)
    jaw = ARKIT52_NAMES.index("jawOpen")
    s[:, jaw] = 0.3 + 0.25 * np.sin(np.arange(n) / 3)
    s[:, ARKIT52_NAMES.index("mouthClose")] = 0.1
    for emo in ("surprise", "fear", "happiness", "anger"):
        out = apply_emotion(s, emo, 1.0, space="blendshapes52")
        for name in ARTICULATION["blendshapes52"]:
            j = ARKIT52_NAMES.index(name)
            np.testing.assert_array_equal(out[:, j], s[:, j])
        assert out.min() >= 0 and out.max() <= 1
    happy = apply_emotion(s, "happiness", 1.0, space="blendshapes52")
    for name in ("mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft", "cheekSquintRight"):
        assert happy[0, ARKIT52_NAMES.index(name)] == pytest.approx(0.6)
    c = emotion_prototype("contempt", "blendshapes52")
    assert c[ARKIT52_NAMES.index("mouthSmileRight")] == pytest.approx(0.6)
    assert c[ARKIT52_NAMES.index("mouthDimpleRight")] == pytest.approx(0.6)
    assert c[ARKIT52_NAMES.index("mouthSmileLeft")] == 0 == c[ARKIT52_NAMES.index("mouthDimpleLeft")]
    # the ARKit prototypes read back as the AU prototypes (expression AUs; contempt is bilateral
    # at half intensity in AU17, which the one-sided ARKit version averages to)
    for emo in EMOTIONS:
        back = arkit52_to_au17(emotion_prototype(emo, "blendshapes52"))
        want = emotion_prototype(emo, "au17")
        keep = [i for i, a in enumerate(AU) if a not in ARTICULATION["au17"]]
        np.testing.assert_allclose(back[keep], want[keep], atol=1e-5, err_msg=emo)


def test_distributions_mixtures_and_predictions():
    s = np.zeros((4, 17), np.float32)
    mix = apply_emotion(s, {"happiness": 0.5, "sadness": 0.5})
    assert mix[0, AU.index("AU12")] == pytest.approx(1.5) and mix[0, AU.index("AU15")] == 1.5
    dist = np.zeros((4, 8), np.float32)
    dist[:2, EMOTIONS.index("anger")] = 1.0
    dist[2:, EMOTIONS.index("neutral")] = 1.0
    out = apply_emotion(s, dist)
    assert (out[:2, AU.index("AU04")] == 3.0).all() and (out[2:] == 0).all()
    pred = Prediction(dist, EMOTIONS, EMOTIONS, "emotion8")
    np.testing.assert_array_equal(apply_emotion(s, pred), out)
    track = Prediction(s, tuple(AU), tuple(AU), "au17")
    np.testing.assert_array_equal(apply_emotion(track, "anger")[:, AU.index("AU04")], 3.0)


@pytest.mark.parametrize("bad, match", [
    ("joyful", "unknown emotion 'joyful'"),
    (np.ones(7), r"\(8,\) or \(frames, 8\)"),
    ({"anger": -1}, "finite and >= 0"),
    (np.ones((3, 8)), "3 frames, the values 4"),
])
def test_bad_emotions_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        apply_emotion(np.zeros((4, 17), np.float32), bad)


def test_bad_intensity_space_and_shape_are_clear_errors():
    s = np.zeros((4, 17), np.float32)
    with pytest.raises(ValueError, match="intensity must be a finite number >= 0"):
        apply_emotion(s, "anger", -0.5)
    with pytest.raises(ValueError, match=r"intensity curve must be \(4,\)"):
        apply_emotion(s, "anger", np.ones(3))
    with pytest.raises(ValueError, match="not 'landmarks68'"):
        apply_emotion(np.zeros((4, 136)), "anger", space="landmarks68")
    with pytest.raises(ValueError, match=r"\(frames, 52\)"):
        apply_emotion(s, "anger", space="blendshapes52")
    assert emotion_weights("Surprised").argmax() == EMOTIONS.index("surprise")


# --------------------------------------------------------------------------- animate
@pytest.fixture(scope="module", autouse=True)
def _face_model() -> Iterator[None]:
    from test_face import landmarker_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHFACE_FACE_LANDMARKER", str(landmarker_model()))
        yield


def test_animate_with_emotion_drives_the_translator_with_the_blend():
    import torch

    from speechface import animate
    from speechface.audio import load_audio
    from speechface.render.translators import Translator

    torch.manual_seed(0)
    est = AUEstimator.create("cnn")
    tr = Translator.create("ganimation", image_size=32, conv_dim=8, repeat_num=1)
    wave = load_audio(EXAMPLES / "speech.wav")[:16000].numpy()
    photo = EXAMPLES / "astronaut.jpg"
    plain = animate(wave, photo, est, tr, sample_rate=16000, progress=False)
    happy = animate(wave, photo, est, tr, sample_rate=16000, progress=False,
                    emotion="happiness", intensity=0.7)
    # the mouth sync's photo step measures the jaw response in the animation's own expression,
    # so with an emotion it maps AU25 / AU26 through another curve; every other AU is the blend
    blend = apply_emotion(plain.driving, "happiness", 0.7)
    np.testing.assert_allclose(happy.driving[:, :14], blend[:, :14], atol=1e-6)
    np.testing.assert_allclose(happy.driving[:, 16:], blend[:, 16:], atol=1e-6)
    # without the mouth sync the driving conditions are exactly the blend
    kw = {"sample_rate": 16000, "progress": False, "mouth_sync": False}
    np.testing.assert_allclose(
        animate(wave, photo, est, tr, emotion="happiness", intensity=0.7, **kw).driving,
        apply_emotion(animate(wave, photo, est, tr, **kw).driving, "happiness", 0.7), atol=1e-6)
    assert happy.info["emotion"] == "happiness" and happy.info["intensity"] == 0.7
    assert not np.array_equal(happy.frames, plain.frames)
    with pytest.raises(ValueError, match="unknown emotion"):
        animate(wave, photo, est, tr, sample_rate=16000, progress=False, emotion="bored")
