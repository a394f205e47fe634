"""speechface.speech.delay: the fitted output delay of a speech model (predict, batch, save/load)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speechface import AUEstimator, SpeechEstimator
from speechface.speech.delay import OutputDelay, delay_outputs


def test_delay_outputs_interpolates_and_holds_the_first_frame() -> None:
    x = torch.arange(6.0)[:, None]
    assert delay_outputs(x, 0) is x
    assert delay_outputs(x, 2)[:, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert delay_outputs(x, 0.25)[:, 0].tolist() == [0, 0.75, 1.75, 2.75, 3.75, 4.75]


@pytest.mark.parametrize("d", [0.5, 1.0, 2.4, 7.0])
def test_streamed_delay_equals_the_offline_one_for_any_chunking(d: float) -> None:
    x = torch.randn(40, 3)
    st = OutputDelay(d)
    got = torch.cat([st.push(x[a:b]) for a, b in [(0, 0), (0, 1), (1, 2), (2, 9), (9, 40)]])
    torch.testing.assert_close(got, delay_outputs(x, d))


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "x"])
def test_bad_delays_raise_naming_output_delay(bad) -> None:
    est = AUEstimator.create("cnn")
    with pytest.raises(ValueError, match="output_delay"):
        est.output_delay = bad
    with pytest.raises(ValueError, match="output_delay"):
        OutputDelay(bad)


def test_utterance_level_models_have_no_frames_to_delay() -> None:
    est = AUEstimator.create("lstm_mfcc")
    est.output_delay = 0
    with pytest.raises(ValueError, match="one vector per utterance"):
        est.output_delay = 1


def test_predict_batch_and_a_saved_model_keep_the_delay(tmp_path) -> None:
    torch.manual_seed(0)
    est = AUEstimator.create("cnn").eval()
    est.set_calibration(torch.rand(17) + 0.5, torch.randn(17))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16000).astype(np.float32), rng.standard_normal(9000).astype(np.float32)
    plain = est.predict(a, 16000).values
    est.output_delay = 1.5
    delayed = est.predict(a, 16000).values
    assert not np.allclose(plain, delayed)
    batch = est.predict_batch([a, b], 16000)
    np.testing.assert_allclose(batch[0].values, delayed, atol=1e-5)
    np.testing.assert_allclose(batch[1].values, est.predict(b, 16000).values, atol=1e-5)
    np.testing.assert_allclose(est.predict(a, 16000, chunk_seconds=0.4).values, delayed, atol=1e-5)
    est.save_pretrained(tmp_path / "m")
    back = SpeechEstimator.from_pretrained(tmp_path / "m")
    assert back.output_delay == 1.5
    np.testing.assert_allclose(back.predict(a, 16000).values, delayed, atol=1e-6)


def test_fit_output_delay_finds_the_shift_of_the_targets() -> None:
    from speechface.data.clips import TrainClip
    from speechface.evaluation.calibration import fit_output_delay

    torch.manual_seed(0)
    est = AUEstimator.create("cnn").eval()
    est.set_calibration(torch.rand(17) + 0.5, torch.rand(17) + 1.0)  # activations stay in range
    rng = np.random.default_rng(1)
    clips = []
    for i in range(3):
        audio = torch.from_numpy(rng.standard_normal(32000).astype(np.float32))
        est.output_delay = 1.75
        target = torch.from_numpy(est.predict(audio, 16000).values)
        est.output_delay = 0.5  # the fit ignores the model's own delay
        clips.append(TrainClip(f"c{i}", f"g{i}", torch.zeros(len(target), 80), target,
                               torch.ones(len(target), dtype=torch.bool), audio=audio))
    fit = fit_output_delay(est, clips, columns=["AU25", "AU26"])
    assert fit["delay"] == 1.75 and fit["scores"][1.75] == pytest.approx(1.0, abs=1e-4)
    assert fit["scores"][0.0] < fit["scores"][1.75] and fit["n_clips"] == 3
    assert est.output_delay == 0.5
    with pytest.raises(ValueError, match="unknown columns"):
        fit_output_delay(est, clips, columns=["jawOpen"])


def test_evaluation_sees_the_delayed_predictions() -> None:
    from speechface.data.clips import TrainClip
    from speechface.evaluation import predict_clip

    torch.manual_seed(0)
    est = AUEstimator.create("cnn").eval()
    est.output_delay = 2.0
    audio = torch.randn(16000)
    clip = TrainClip("c", "g", torch.zeros(25, 80), torch.zeros(25, 17), torch.ones(25, dtype=torch.bool),
                     audio=audio)
    np.testing.assert_allclose(predict_clip(est, clip), est.predict(audio, 16000).values, atol=1e-5)
